#!/usr/bin/env bash
# Start-up: seed 000 (58 functions) laid out as a sysfs tree in a temporary directory, and
# the median wall time of 20 runs of `plan` with its example policy and of `run --once`
# with nothing to do (no policy: every device read, nothing written), through the real
# file layer.
set -eu
agent=${1:?usage: startup.sh PATH-TO-hotplug-agent}
here=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
"$agent" bench --write-tree "$dir/root" --host "$here/hosts/seed-000-mi300x.json"
# The accounts the example policy names, as seed 000's description has them.
mkdir -p "$dir/root/etc"
printf 'root:x:0:0::/root:/bin/sh\ncloud:x:1000:1000::/home/cloud:/bin/sh\n' > "$dir/root/etc/passwd"
printf 'root:x:0:\nkvm:x:993:\ncloud:x:1000:\n' > "$dir/root/etc/group"
mkdir -m 755 "$dir/policies" "$dir/none"
cp "$here"/rules/examples/seed-000/*.toml "$dir/policies/"
median() {
    local times=()
    for _ in $(seq 20); do
        local start=$(date +%s%N)
        "$@" >/dev/null 2>"$dir/stderr" || { echo "startup.sh: $* failed: $(head -n 3 "$dir/stderr")" >&2; exit 1; }
        times+=($(( ($(date +%s%N) - start) / 1000 )))
    done
    printf '%s\n' "${times[@]}" | sort -n | sed -n 10p
}
devices=$(ls "$dir/root/sys/bus/pci/devices" | wc -l)
plan=$(median "$agent" plan --root "$dir/root" --policy-dir "$dir/policies")
once=$(median "$agent" run --once --root "$dir/root" --policy-dir "$dir/none" --state-dir "$dir/state")
printf "%-42s%10.1f ms  (median of 20, %d devices, the example policy; goal <= 30 ms)\n" "start-up, plan on seed 000" "$(awk -v us="$plan" 'BEGIN { print us / 1000 }')" "$devices"
printf "%-42s%10.1f ms  (median of 20, nothing to do; goal <= 30 ms)\n" "start-up, run --once on seed 000" "$(awk -v us="$once" 'BEGIN { print us / 1000 }')"
