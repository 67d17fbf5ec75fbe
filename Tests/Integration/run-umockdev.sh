#!/usr/bin/env bash
# Builds the umockdev harness and runs the built hotplug-agent under it.
set -euo pipefail
agent=${1:?usage: run-umockdev.sh PATH-TO-hotplug-agent}
here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$here/../.." && pwd)/.build/integration
mkdir -p "$out"
cc -O1 -Wall -Wno-unused-result -o "$out/umockdev-harness" "$here/umockdev-harness.c" $(pkg-config --cflags --libs umockdev-1.0)

# umockdev's uevent sender aborts once a listener has 10 unread events; allow bursts.
if [ -w /proc/sys/net/unix/max_dgram_qlen ] && [ "$(cat /proc/sys/net/unix/max_dgram_qlen)" -lt 512 ]; then
    echo 512 > /proc/sys/net/unix/max_dgram_qlen
fi

policies=$(mktemp -d)
trap 'rm -rf "$policies"' EXIT
chmod 755 "$policies"
cat > "$policies/50-mi300x.toml" <<'TOML'
[[policy]]
name = "mi300x"
match.ids = ["1002:74a1"]
driver = "vfio-pci"
owner = "1000"
group = "993"
mode = "0660"

[[policy]]
name = "flex-pf"
match.ids = ["8086:56c0"]
match.vf = false
sriov.autoprobe = false
sriov.num-vfs = 1

[[policy]]
name = "flex-vfs"
match.pf-ids = ["8086:56c0"]
driver = "vfio-pci"
owner = "1000"
group = "993"
mode = "0660"
TOML
echo "umockdev integration: $agent"
umockdev-wrapper "$out/umockdev-harness" "$agent" "$policies"
