"""The Kubernetes manifests parse, and the DaemonSet asks for no more than the agent needs:
host network (uevents), host PID (to see VMs holding devices), not privileged, exactly the unit's capabilities, and
host paths /sys, /dev, /lib/modules and /run/hotplug-agent only; policies from the
ConfigMap, readiness from `status`. Prints one line per check and "N passed, M failed"."""
import re
import sys

import yaml

root = sys.argv[1]
documents = list(yaml.safe_load_all(open(f"{root}/deploy/kubernetes/hotplug-agent.yaml")))
unit = open(f"{root}/rules/hotplug-agent.service").read()
passed = failed = 0


def check(name, ok):
    global passed, failed
    print(("PASS: " if ok else "FAIL: ") + name)
    passed, failed = passed + bool(ok), failed + (not ok)


kinds = {document["kind"]: document for document in documents}
check("the manifests parse: a ConfigMap and a DaemonSet", set(kinds) == {"ConfigMap", "DaemonSet"})
pod = kinds["DaemonSet"]["spec"]["template"]["spec"]
container = pod["containers"][0]
check("host network, for kernel uevents", pod.get("hostNetwork") is True)
check("the host PID namespace, to see the VMs that hold devices", pod.get("hostPID") is True)
check("a nodeSelector example", bool(pod.get("nodeSelector")))
security = container["securityContext"]
check("not privileged", security.get("privileged") is False)
bounding = re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M).group(1).split()
wanted = sorted(name.removeprefix("CAP_") for name in bounding)
check("exactly the unit's capabilities", security["capabilities"]["drop"] == ["ALL"] and sorted(security["capabilities"]["add"]) == wanted)
paths = sorted(volume["hostPath"]["path"] for volume in pod["volumes"] if "hostPath" in volume)
check("host paths: /sys, /dev, /lib/modules, /run/hotplug-agent, /var/run/cdi only",
      paths == ["/dev", "/lib/modules", "/run/hotplug-agent", "/sys", "/var/run/cdi"])
mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
cdi = next(volume for volume in pod["volumes"] if volume.get("hostPath", {}).get("path") == "/var/run/cdi")
check("the CDI specs where the node's runtimes read them", mounts[cdi["name"]]["mountPath"] == "/var/run/cdi"
      and not mounts[cdi["name"]].get("readOnly", False))
policies = next(volume for volume in pod["volumes"] if "configMap" in volume)
check("policies from the ConfigMap, where run reads them",
      policies["configMap"]["name"] == kinds["ConfigMap"]["metadata"]["name"]
      and mounts[policies["name"]]["mountPath"] == "/etc/hotplug-agent/policies.d"
      and "/etc/hotplug-agent/policies.d" in container["args"])
check("readiness from status", container["readinessProbe"]["exec"]["command"][1] == "status")
for name, text in kinds["ConfigMap"]["data"].items():
    open(f"{sys.argv[2]}/{name}", "w").write(text)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
