#!/usr/bin/env bash
# The CDI specs the agent makes, checked against the CDI JSON schema (a copy of v0.5.3's,
# in schema/) and CDI 0.5's naming rules: seed 000 claimed with its example policies (the
# group nodes), and again on a kernel with iommufd device nodes with a second kind. The
# validator is shown to refuse a spec with a bad name, so a pass means something.
# Podman reading them for real is in the real-kernel test. Debian's python3 and
# python3-jsonschema (make deps installs them) run the validator.
#
#   Tests/CDI/run.sh path/to/hotplug-agent
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
agent=$(realpath "${1:?usage: run.sh BINARY}")
work=$(mktemp -d /tmp/hotplug-agent-cdi.XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

# The specs simulate prints, one file each ("== CDI spec /var/run/cdi/NAME", then the JSON).
specs() {
    local out=$1; shift
    mkdir -p "$out"
    "$agent" simulate "$@" | awk -v out="$out" '
        /^== CDI spec / { n = split($4, p, "/"); file = out "/" p[n]; next }
        /^== / || /^$/ { file = ""; next }
        file != "" { print > file }'
}

specs "$work/legacy" --host "$repo/hosts/seed-000-mi300x.json" --policy-dir "$repo/rules/examples/seed-000"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["vfio_device_nodes"]=True; json.dump(d,open(sys.argv[2],"w"))' \
    "$repo/hosts/seed-000-mi300x.json" "$work/nodes.json"
specs "$work/iommufd" --host "$work/nodes.json" --policy-dir "$here/policies"

files=$(ls "$work"/legacy/*.json "$work"/iommufd/*.json 2>/dev/null | tr '\n' ' ')
if [ "$(ls "$work/legacy") $(ls "$work/iommufd" | tr '\n' ' ')" = "hotplug-agent.json hotplug-agent.example.com.nic.json hotplug-agent.json " ]; then
    pass "simulate printed one spec for seed 000 and two for two kinds"
else
    fail "the specs printed: $(ls "$work/legacy" "$work/iommufd" | tr '\n' ' ')"
fi
if out=$(/usr/bin/python3 "$here/validate.py" $files); then
    pass "every spec validates against CDI's schema and names ($(echo $files | wc -w) files)"
else
    fail "a spec does not validate:"; echo "$out" | sed 's/^/    /'
fi
grep -q '"path" : "/dev/vfio/devices/vfio' "$work/iommufd/hotplug-agent.example.com.nic.json" \
    && ! grep -q '"/dev/vfio/vfio"' "$work/iommufd/hotplug-agent.example.com.nic.json" \
    && pass "the iommufd kind lists /dev/iommu and device nodes, never the container" \
    || fail "the iommufd kind's nodes"
sed 's/"name" : "mi300x-0"/"name" : "-mi300x-0"/' "$work/legacy/hotplug-agent.json" > "$work/bad.json"
if /usr/bin/python3 "$here/validate.py" "$work/bad.json" >/dev/null; then
    fail "the validator accepted a device name beginning with a dash"
else
    pass "the validator refuses a device name beginning with a dash"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
