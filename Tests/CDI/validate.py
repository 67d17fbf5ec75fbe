#!/usr/bin/env python3
"""Validates CDI spec files against the CDI JSON schema kept beside this script, and
against the naming rules container-device-interface 0.5 applies when it loads a spec
(pkg/cdi/qualified-device.go): a kind of vendor/class, device names that begin and end
with a letter or digit. Prints one line per file; exits 1 if any is invalid.

    validate.py SPEC.json...
"""
import json
import os
import re
import sys
import warnings

import jsonschema

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema")
with open(os.path.join(here, "schema.json")) as f:
    schema = json.load(f)
with open(os.path.join(here, "defs.json")) as f:
    defs = json.load(f)

VENDOR = re.compile(r"^[A-Za-z]([A-Za-z0-9_.-]*[A-Za-z0-9])?$")
CLASS = re.compile(r"^[A-Za-z]([A-Za-z0-9_-]*[A-Za-z0-9])?$")
NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.:-]*[A-Za-z0-9])?$")


def problems(spec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        resolver = jsonschema.RefResolver(base_uri="file://" + here + "/", referrer=schema,
                                          store={"defs.json": defs, "file://" + here + "/defs.json": defs})
        validator = jsonschema.Draft7Validator(schema, resolver=resolver)
        found = [f"schema: {e.message} at {'/'.join(map(str, e.path))}" for e in validator.iter_errors(spec)]
    if found:
        return found
    if spec["cdiVersion"] not in ("0.3.0", "0.4.0", "0.5.0"):
        found.append(f"cdiVersion {spec['cdiVersion']} is newer than CDI 0.5 reads")
    vendor, _, cls = spec["kind"].partition("/")
    if not VENDOR.match(vendor) or not CLASS.match(cls):
        found.append(f"kind {spec['kind']!r} is not vendor/class")
    names = [d["name"] for d in spec["devices"]]
    found += [f"device name {n!r} is not a CDI name" for n in names if not NAME.match(n)]
    found += [f"device name {n!r} appears twice" for n in set(names) if names.count(n) > 1]
    for d in spec["devices"]:
        paths = [n["path"] for n in d["containerEdits"].get("deviceNodes", [])]
        if "/dev/iommu" in paths and "/dev/vfio/vfio" in paths:
            found.append(f"{d['name']}: both /dev/iommu and /dev/vfio/vfio")
    return found


failed = 0
for path in sys.argv[1:]:
    with open(path) as f:
        found = problems(json.load(f))
    print(("FAIL " if found else "PASS ") + path + "".join("\n    " + p for p in found))
    failed += bool(found)
sys.exit(1 if failed else 0)
