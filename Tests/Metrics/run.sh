#!/usr/bin/env bash
# The daemon's metrics as Prometheus sees them: Debian's prometheus-node-exporter, run on
# 127.0.0.1 with only its textfile collector, scrapes the file the agent writes. The
# exporter is taken from its package with apt-get download and dpkg -x (never installed,
# so no service starts), cached beside the kernels. The agent runs on a temporary tree.
#
#   Tests/Metrics/run.sh path/to/hotplug-agent
set -u
agent=$(realpath "${1:?usage: run.sh BINARY}")
cache=${HOTPLUG_AGENT_CACHE:-/var/cache/hotplug-agent}/node-exporter
passed=0 failed=0
check() { if eval "$2"; then echo "PASS: $1"; passed=$((passed+1)); else echo "FAIL: $1"; failed=$((failed+1)); fi; }

exporter=$cache/usr/bin/prometheus-node-exporter
if [ ! -x "$exporter" ]; then
    mkdir -p "$cache/download"
    (cd "$cache/download" && apt-get download -o APT::Sandbox::User=root prometheus-node-exporter >/dev/null 2>&1) \
        || { apt-get update -qq && (cd "$cache/download" && apt-get download -o APT::Sandbox::User=root prometheus-node-exporter >/dev/null); }
    dpkg -x "$cache"/download/prometheus-node-exporter_*.deb "$cache"
    rm -rf "$cache/download"
fi

work=$(mktemp -d /tmp/hotplug-agent-metrics.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# A host with one GPU on amdgpu, and a policy that wants it on pci-stub: under a test root
# no module is loaded, so the claim fails, and the metrics say so.
device=$work/root/sys/bus/pci/devices/0000:0b:00.0
mkdir -p "$device" "$work/root/sys/bus/pci/drivers/amdgpu" "$work/root/sys/kernel/iommu_groups/20/devices" "$work/policies" "$work/textfile"
printf '0x1002\n' > "$device/vendor"; printf '0x73bf\n' > "$device/device"; printf '0x030000\n' > "$device/class"
printf '0x1002\n' > "$device/subsystem_vendor"; printf '0x0e3a\n' > "$device/subsystem_device"; printf '(null)\n' > "$device/driver_override"
printf 'DRIVER=amdgpu\nPCI_CLASS=30000\nPCI_ID=1002:73BF\nPCI_SUBSYS_ID=1002:0E3A\nPCI_SLOT_NAME=0000:0b:00.0\nMODALIAS=pci:v00001002d000073BFsv00001002sd00000E3Abc03sc00i00\n' > "$device/uevent"
ln -s ../../../bus/pci/drivers/amdgpu "$device/driver"
ln -s ../../../kernel/iommu_groups/20 "$device/iommu_group"
printf '[[policy]]\nname = "gpu"\nmatch.ids = ["1002:73bf"]\ndriver = "pci-stub"\n' > "$work/policies/50-gpu.toml"
chmod 755 "$work" "$work/policies"

# The unit's UMask=0077, and the exporter as an unprivileged user, as Debian runs it: the
# file must be readable by others whatever the daemon's umask. Debian makes the textfile
# directory's parent the exporter user's, so that user may plant links in it: one at the
# old temporary name, to a root-only file, must never be followed by root.
chown nobody:nogroup "$work/textfile"
chmod 755 "$work/textfile"
printf 'root:secret\n' > "$work/victim"
chmod 600 "$work/victim"
setpriv --reuid=nobody --regid=nogroup --clear-groups ln -s "$work/victim" "$work/textfile/.hotplug_agent.prom.tmp"
(umask 077 && exec "$agent" run --root "$work/root" --policy-dir "$work/policies" --state-dir "$work/state" \
    --metrics-file "$work/textfile/hotplug_agent.prom") 2>"$work/agent.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/textfile/hotplug_agent.prom" ] && break; sleep 0.1; done
check "the daemon writes its metrics file" "[ -s '$work/textfile/hotplug_agent.prom' ]"
check "a link the directory's owner planted is not followed: the root-only file is untouched" \
    "[ \"\$(cat '$work/victim')\" = root:secret ] && [ \"\$(stat -c %a '$work/victim')\" = 600 ]"
check "the metrics file is a file of the agent's, mode 0644" \
    "[ -f '$work/textfile/hotplug_agent.prom' ] && [ ! -L '$work/textfile/hotplug_agent.prom' ] && [ \"\$(stat -c '%a %u' '$work/textfile/hotplug_agent.prom')\" = '644 0' ]"

port=$((20000 + RANDOM % 20000))
setpriv --reuid=nobody --regid=nogroup --clear-groups "$exporter" --web.listen-address="127.0.0.1:$port" --collector.disable-defaults --collector.textfile \
    --collector.textfile.directory="$work/textfile" >"$work/exporter.log" 2>&1 &
pids+=($!)
scrape=
for _ in $(seq 100); do scrape=$(curl -sf "http://127.0.0.1:$port/metrics") && break; sleep 0.1; done
check "the node exporter answers on 127.0.0.1:$port" "[ -n \"\$scrape\" ]"
check "it read the file without error" "grep -qx 'node_textfile_scrape_error 0' <<< \"\$scrape\""
check "devices per policy and state: the GPU's claim failed" \
    "grep -qx 'hotplug_agent_devices{policy=\"gpu\",state=\"failed\"} 1' <<< \"\$scrape\""
check "failures per kind: the module load" \
    "grep -qx 'hotplug_agent_action_failures_total{action=\"load_module\"} 1' <<< \"\$scrape\""
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
