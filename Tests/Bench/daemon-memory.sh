#!/usr/bin/env bash
# The real daemon with 4096 devices known: the bench's 16 PFs x 256 VFs and its policy laid
# out as a sysfs tree and policies.d in a temporary directory, read through the real file
# layer by `run --dry-run --root` (which writes nothing), and its resident memory once it
# has read and planned for all.
set -eu
agent=${1:?usage: daemon-memory.sh PATH-TO-hotplug-agent}
dir=$(mktemp -d)
chmod 755 "$dir"
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; [ -n "${KEEP_LOG:-}" ] && cp "$dir/log" "$KEEP_LOG"; rm -rf "$dir"' EXIT
pid=
"$agent" bench --write-tree "$dir/root"
# Read as a host's sysfs is, what is known of each device kept (the tree never changes).
HOTPLUG_AGENT_TREE_AS_SYSFS=1 "$agent" run --dry-run --root "$dir/root" --state-dir "$dir/state" \
    --log-level "${LOG_LEVEL:-error}" 2>"$dir/log" &
pid=$!
# Settled once its CPU time stops moving.
ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }
last=-1
for _ in $(seq 60); do
    sleep 0.5
    now=$(ticks)
    [ "$now" = "$last" ] && break
    last=$now
done
devices=$(ls "$dir/root/sys/bus/pci/devices" | wc -l)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
printf "%-42s%10.1f MiB  (the real daemon, %d devices read through sysfs files; goal <= 10 MiB)\n" \
    "resident memory, daemon, devices known" "$(awk -v kib="$rss" 'BEGIN { print kib / 1024 }')" "$devices"
