#!/usr/bin/env bash
# The Kubernetes manifests: they parse, ask for no more than the agent needs, and the
# policies their ConfigMap carries pass `hotplug-agent check`, also as kubelet lays them out.
set -u
agent=$(realpath "${1:?usage: run.sh BINARY}")
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/hotplug-agent-deploy.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
/usr/bin/python3 "$root/Tests/Deploy/check.py" "$root" "$work" || exit 1
if "$agent" check --root "$work" "$work"/*.toml >/dev/null; then
    echo "PASS: the ConfigMap's policies pass check"; echo "1 passed, 0 failed"
else
    echo "FAIL: the ConfigMap's policies pass check"; "$agent" check --root "$work" "$work"/*.toml; echo "0 passed, 1 failed"; exit 1
fi
# kubelet's real volume layout needs mounts: as root, in a mount namespace of its own.
if [ "$(id -u)" = 0 ] && unshare --mount true 2>/dev/null; then
    unshare --mount "$root/Tests/Deploy/configmap.sh" "$agent" "$work/kubelet" "$work"/*.toml || exit 1
else
    echo "SKIP: kubelet's volume layout needs root and mount namespaces"
fi
