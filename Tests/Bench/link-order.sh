#!/usr/bin/env bash
# Writes packaging/link-order.txt: the functions hotplug-agent runs, which the release link
# (lld --symbol-ordering-file) lays out side by side at the start of .text. The kernel maps
# a binary's pages 64 KiB around each one touched: scattered over 10 MB of code, the few
# hundred KiB the daemon runs kept half of it resident. Collected under callgrind from
#   - the daemon's coldplug of the bench's 4128 devices (run --once --dry-run on a tree),
#   - the daemon on that tree (run --dry-run) until it settles, then stopped,
#   - the agent claiming, on the simulated seed hosts (simulate, in the lab),
#   - 100 hot-adds with their events (bench --only hotplug, in the lab),
# keeping the names the daemon's binary defines, sorted (a stable diff). Run it after
# changes that rename or add what the daemon runs; a stale list costs memory, not
# correctness (names it does not know are ignored).
#
#   Tests/Bench/link-order.sh    (needs valgrind; builds the release binaries)
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "link-order.sh: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
flags=$(make -s --no-print-directory print-release-flags)
# shellcheck disable=SC2086
swift build $flags >/dev/null
# shellcheck disable=SC2086
bin=$(swift build $flags --show-bin-path)/hotplug-agent
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"

profile() { valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.$1" "${@:2}" >/dev/null 2>&1; }
"$bin-lab" bench --write-tree "$work/root"
profile coldplug "$bin" run --once --dry-run --root "$work/root" --state-dir "$work/state" --log-level error
# The daemon itself (its loop, signals, monitor, timers), stopped by SIGTERM once its CPU
# time stops moving.
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.daemon" \
    "$bin" run --dry-run --root "$work/root" --state-dir "$work/state" --log-level error >/dev/null 2>&1 &
daemon=$!
last=-1
for _ in $(seq 300); do
    sleep 2
    now=$(awk '{ print $14 + $15 }' "/proc/$daemon/stat")
    [ "$now" = "$last" ] && break
    last=$now
done
kill -TERM "$daemon"
wait "$daemon" || true
for host in hosts/seed-00*.json; do
    seed=$(basename "$host" | cut -d- -f1-2)
    profile "$seed" "$bin-lab" simulate --host "$host" --policy-dir "rules/examples/$seed" --log-level debug
done
profile hotplug "$bin-lab" bench --only hotplug

nm --defined-only "$bin" | awk '$2 ~ /^[tT]$/ { print $3 }' | sort -u > "$work/defined"
sed -n 's/^c\{0,1\}fn=([0-9]*) //p' "$work"/cg.* | sort -u > "$work/ran"
# A name in a large input section (a library's whole-object .text: libswiftCore's Swift.o
# is 1.5 MB) would pull all of it to the front, between the small ones: left out, so the
# functions the daemon runs lie within about a megabyte. The link map tells the sections.
# shellcheck disable=SC2086
swift build $flags --product hotplug-agent -Xlinker -Map="$work/map" >/dev/null
awk -f Tests/Bench/large-sections.awk "$work/map" | sort -u > "$work/large"
comm -12 "$work/ran" "$work/defined" | comm -23 - "$work/large" > packaging/link-order.txt
echo "packaging/link-order.txt: $(wc -l < packaging/link-order.txt) functions"
