#!/usr/bin/env bash
# The DaemonSet's ConfigMap as kubelet really lays it out, in a private mount namespace
# (run by run.sh under `unshare --mount`): the volume's root is an emptyDir of mode 0777
# (no sticky bit) on a tmpfs, holding a timestamped directory `..YYYY_MM_DD_HH_MM_SS.N`
# (0755, files 0644), a link `..data` to it and each key as a link `KEY -> ..data/KEY`;
# the container sees it through a read-only bind mount. An update is kubelet's atomic
# writer: a new timestamped directory, `..data_tmp` linked to it and renamed over `..data`,
# the old directory removed. The agent must load the read-only volume, refuse the same
# directory writable, and reload by itself on a swap. Prints PASS/FAIL lines.
set -u
agent=${1:?usage: configmap.sh BINARY WORK POLICY...}
work=${2:?}
shift 2
passed=0 failed=0
check() { if [ "$2" = 0 ]; then echo "PASS: $1"; passed=$((passed + 1)); else echo "FAIL: $1"; failed=$((failed + 1)); fi; }

# The payload's files (named as keys) into the volume, as kubelet's atomic writer does.
kubelet_write() {
    local volume=$1 payload=$2 old ts
    old=$(readlink "$volume/..data" 2>/dev/null || true)
    ts=$(mktemp -d "$volume/..$(date -u +%Y_%m_%d_%H_%M_%S).XXXXXXXXX")
    chmod 0755 "$ts"
    for file in "$payload"/*; do install -m 0644 "$file" "$ts/$(basename "$file")"; done
    ln -s "$(basename "$ts")" "$volume/..data_tmp"
    mv -T "$volume/..data_tmp" "$volume/..data"
    for file in "$payload"/*; do
        [ -L "$volume/$(basename "$file")" ] || ln -s "..data/$(basename "$file")" "$volume/$(basename "$file")"
    done
    [ -z "$old" ] || rm -rf "${volume:?}/$old"
}

mount --make-rprivate / 2>/dev/null
mkdir -p "$work/volume" "$work/pod/policies.d" "$work/payload" "$work/root/sys/bus/pci/devices" \
    "$work/root/sys/bus/pci/drivers" "$work/root/sys/kernel/iommu_groups" "$work/root/dev/vfio" "$work/state"
mount -t tmpfs -o mode=0777 tmpfs "$work/volume"
cp "$@" "$work/payload/"
kubelet_write "$work/volume" "$work/payload"
mount --bind "$work/volume" "$work/pod/policies.d"
mount -o remount,bind,ro "$work/pod/policies.d"
dir=$work/pod/policies.d

[ "$(stat -c %a "$dir")" = 777 ] && [ -L "$dir/..data" ] && ! touch "$dir/x" 2>/dev/null
check "the volume is laid out as kubelet does: mode 0777, ..data, read-only" $?
"$agent" check --policy-dir "$dir" >"$work/check.out" 2>&1
check "check loads the read-only ConfigMap volume" $?
"$agent" check --policy-dir "$work/volume" >"$work/check-rw.out" 2>&1
[ $? = 1 ] && grep -q "directory is writable by group or others (mode 0777); refused" "$work/check-rw.out"
check "the same directory, writable, is refused" $?
# A read-only mount excuses directories, never a file's own mode: the same file may be
# written through another mount of it (kubelet's own, here $work/volume).
data=$(readlink "$work/volume/..data")
first=$(ls "$work/payload" | head -1)
chmod 0666 "$work/volume/$data/$first"
"$agent" check --policy-dir "$dir" >"$work/check-0666.out" 2>&1
[ $? = 1 ] && grep -q "$first: file is writable by group or others (mode 0666); refused" "$work/check-0666.out"
check "a file of mode 0666 on the read-only mount is refused" $?
chmod 0644 "$work/volume/$data/$first"

# The daemon reads the volume, then kubelet swaps ..data: it reloads by itself.
"$agent" run --dry-run --root "$work/root" --state-dir "$work/state" --policy-dir "$dir" 2>"$work/run.log" &
daemon=$!
wait_for() { for _ in $(seq 100); do grep -q "$1" "$work/run.log" && return 0; sleep 0.1; done; return 1; }
wait_for "policies loaded"
check "run starts on the read-only volume" $?
sed -i 's/^name = "\(.*\)"/name = "\1-v2"/' "$work/payload/$first"
kubelet_write "$work/volume" "$work/payload"
wait_for "reloaded [0-9]* policies"
check "a ..data swap is reloaded without a signal" $?
! grep -q "reload refused\|error:" "$work/run.log"
check "the reload found no error" $?
kill -TERM "$daemon"; wait "$daemon"
check "the daemon exits 0 on SIGTERM" $?
[ "$failed" = 0 ] || { echo "--- check:"; cat "$work/check.out"; echo "--- run:"; cat "$work/run.log"; }
umount "$dir" "$work/volume"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
