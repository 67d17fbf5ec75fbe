#!/usr/bin/env bash
# The running daemon while nothing happens: its CPU time over a minute (it should not
# grow: no polling, no timers), and its resident memory. Runs `run --dry-run` against this
# machine, which reads devices and writes nothing.
set -eu
agent=${1:?usage: idle.sh PATH-TO-hotplug-agent}
seconds=${IDLE_SECONDS:-60}
dir=$(mktemp -d)
chmod 755 "$dir"
"$agent" run --dry-run --policy-dir "$dir" --state-dir "$dir/state" --log-level error &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
sleep 3
ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }
hz=$(getconf CLK_TCK)
before=$(ticks)
sleep "$seconds"
after=$(ticks)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
printf "%-42s%10s  (goal: no growth; resident %.1f MiB with %d devices)\n" "idle daemon, CPU over $seconds s" \
    "$(( (after - before) * 1000 / hz )) ms" "$(awk -v kib="$rss" 'BEGIN { print kib / 1024 }')" "$(ls /sys/bus/pci/devices | wc -l)"
