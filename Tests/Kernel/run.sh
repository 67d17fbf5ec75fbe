#!/usr/bin/env bash
# The real-kernel test: boots one of Debian's kernels under QEMU (q35, an emulated VT-d
# with interrupt remapping, two e1000e functions, an NVMe controller with SR-IOV, an empty
# hotplug root port) and runs Tests/Kernel/guest.sh in it with this build's agent. The
# host drives hot-add and hot-remove through QMP when the guest asks. One line per
# scenario, then "N passed, M failed".
#
#   Tests/Kernel/run.sh 6.12|6.1 path/to/hotplug-agent
#
# The kernel package is downloaded with apt-get download and unpacked with dpkg -x into
# $HOTPLUG_AGENT_KERNEL_CACHE (default /var/cache/hotplug-agent/kernels), never installed.
# KVM is used when /dev/kvm boots the guest, TCG otherwise (HOTPLUG_AGENT_ACCEL=tcg|kvm
# forces one). Nothing here writes to this machine's /sys or /dev: the guest sees the
# host's root read-only over 9p, and everything it changes is its own.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
flavour=${1:?usage: run.sh 6.12|6.1 BINARY}
binary=$(realpath "${2:?usage: run.sh 6.12|6.1 BINARY}")
cache=${HOTPLUG_AGENT_KERNEL_CACHE:-/var/cache/hotplug-agent/kernels}
case $flavour in
    6.12) meta=linux-image-6.12-amd64 ;;
    6.1) meta=linux-image-amd64 ;;
    *) echo "run.sh: unknown kernel $flavour (6.12 or 6.1)" >&2; exit 2 ;;
esac

# --- The kernel: Debian's package, unpacked into the cache once -----------------------
package=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$package" ]; then
    apt-get update -qq && package=$(apt-cache depends "$meta" | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
fi
root=$cache/$package
if [ ! -e "$root/.unpacked" ]; then
    mkdir -p "$cache"
    rm -rf "$root" "$cache/download"
    mkdir -p "$cache/download"
    # _apt cannot write a root-owned cache: download as root, into the cache itself.
    (cd "$cache/download" && apt-get download -o APT::Sandbox::User=root "$package" >/dev/null)
    dpkg -x "$cache"/download/*.deb "$root"
    rm -rf "$cache/download"
    touch "$root/.unpacked"
fi
version=$(ls "$root/lib/modules")
[ -e "$root/lib/modules/$version/modules.dep" ] || depmod -b "$root" "$version"
vmlinuz=$root/boot/vmlinuz-$version

# --- The initramfs: busybox, /init, and the modules that reach the host over 9p --------
work=$(mktemp -d /tmp/hotplug-agent-kernel.XXXXXX)
qemu_pid=
cleanup() { [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
[ -n "${HOTPLUG_AGENT_KEEP:-}" ] && trap - EXIT && echo "keeping $work"
mkdir -p "$work/initramfs/bin" "$work/initramfs/modules" "$work/initramfs/proc" "$work/initramfs/sys" "$work/initramfs/dev"
cp /bin/busybox "$work/initramfs/bin/busybox"
cp "$here/init" "$work/initramfs/init"
: > "$work/initramfs/modules/order"
for module in 9p 9pnet_virtio virtio_pci; do
    modprobe -d "$root" -S "$version" --show-depends "$module" | while read -r kind path _; do
        [ "$kind" = insmod ] || continue
        name=$(basename "$path"); name=${name%.xz}; name=${name%.zst}
        grep -qx "$name" "$work/initramfs/modules/order" && continue
        case $path in
            *.xz) xz -dc "$path" > "$work/initramfs/modules/$name" ;;
            *.zst) zstd -qdc "$path" > "$work/initramfs/modules/$name" ;;
            *) cp "$path" "$work/initramfs/modules/$name" ;;
        esac
        echo "$name" >> "$work/initramfs/modules/order"
    done
done
(cd "$work/initramfs" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$work/initrd"
# A VMM stand-in that holds a VFIO device open (the guest runs the host's userland).
gcc -O2 -Wall -o "$work/vfio-holder" "$here/vfio-holder.c"

# --- The machine ------------------------------------------------------------------------
truncate -s 512M "$work/nvme.img"
machine=(
    -machine q35,kernel-irqchip=split -smp 2 -m 2048 -nographic -nodefaults -no-reboot -serial stdio
    -kernel "$vmlinuz" -initrd "$work/initrd"
    -append "console=ttyS0 quiet loglevel=3 intel_iommu=on panic=-1 hp.bin=$binary hp.script=$here/guest.sh hp.holder=$work/vfio-holder hp.kernel=$flavour"
    -device intel-iommu,intremap=on,caching-mode=on
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
    -virtfs "local,path=$root,mount_tag=kmods,security_model=none,readonly=on,multidevs=remap"
    -device e1000e,id=nic1,addr=0x3
    -device e1000e,id=nic2,addr=0x4
    -device pcie-root-port,id=rp-nvme,chassis=1,slot=1,addr=0x5
    -device nvme-subsys,id=nvsub,nqn=hotplug-agent-test
    -device "nvme,id=nvme0,bus=rp-nvme,serial=hpa0001,subsys=nvsub,sriov_max_vfs=2,sriov_vq_flexible=4,sriov_vi_flexible=2,max_ioqpairs=6,msix_qsize=4"
    -drive "if=none,id=nvmedisk,file=$work/nvme.img,format=raw"
    -device nvme-ns,drive=nvmedisk,bus=nvme0,nsid=1
    -device pcie-root-port,id=rp-hot,chassis=2,slot=2,addr=0x6
    -qmp "unix:$work/qmp.sock,server=on,wait=off"
)

qmp() {
    printf '{"execute":"qmp_capabilities"}\n%s\n' "$1" | socat -t 3 - "UNIX-CONNECT:$work/qmp.sock" >> "$work/qmp.log" 2>&1
}

# Runs the guest with one accelerator; returns once it powers off (or `limit` passes).
# The console is read line by line: "@@QMP <json>" is passed to QEMU, "PASS"/"FAIL"
# lines are the scenarios, "@@UP" says the guest's userland started.
boot() {
    local accel=$1 limit=$2
    local cpu=max
    [ "$accel" = kvm ] && cpu=host
    rm -f "$work/up" "$work/done" "$work/results"
    : > "$work/console.log"
    mkfifo "$work/console" 2>/dev/null || true
    qemu-system-x86_64 -accel "$accel" -cpu "$cpu" "${machine[@]}" > "$work/console" 2>&1 &
    qemu_pid=$!
    local started=$(date +%s)
    while IFS= read -r line; do
        line=${line%$'\r'}
        printf '%s\n' "$line" >> "$work/console.log"
        # Markers may follow the firmware's screen-clearing escapes on the same line.
        case $line in
            *"@@UP"*) touch "$work/up" ;;
            *"@@QMP "*) qmp "${line#*@@QMP }" ;;
            *"@@DONE"*) touch "$work/done" ;;
            PASS*|FAIL*|INFO*) printf '%s\n' "$line" | tee -a "$work/results" ;;
        esac
    done < "$work/console" &
    local reader=$!
    # No sign of life within a minute (TCG needs about 5 s): this accelerator does not run
    # the guest (a nested hypervisor may accept KVM and then fail it).
    while kill -0 "$qemu_pid" 2>/dev/null; do
        local now=$(date +%s)
        if [ ! -e "$work/up" ] && [ $((now - started)) -gt 60 ]; then break; fi
        if [ $((now - started)) -gt "$limit" ]; then echo "FAIL the guest did not finish within ${limit}s"; break; fi
        sleep 1
    done
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
    wait "$reader" 2>/dev/null || true
    qemu_pid=
    [ -e "$work/up" ]
}

accel=${HOTPLUG_AGENT_ACCEL:-}
if [ -z "$accel" ]; then
    accel=tcg
    [ -r /dev/kvm ] && [ -w /dev/kvm ] && accel=kvm
fi
started=$(date +%s)
echo "real kernel: Debian $package ($version) under QEMU, accelerator $accel"
if ! boot "$accel" 900 && [ "$accel" = kvm ] && [ -z "${HOTPLUG_AGENT_ACCEL:-}" ]; then
    echo "KVM did not run the guest; falling back to TCG"
    accel=tcg
    boot tcg 900 || true
fi
elapsed=$(( $(date +%s) - started ))
passed=$(grep -c "^PASS" "$work/results" 2>/dev/null || true); passed=${passed:-0}
failed=$(grep -c "^FAIL" "$work/results" 2>/dev/null || true); failed=${failed:-0}
if [ ! -e "$work/done" ]; then
    echo "FAIL the guest did not complete its scenarios; the end of its console:"
    tail -n 40 "$work/console.log" | sed 's/^/    /'
    failed=$((failed + 1))
fi
echo "real kernel $flavour ($accel): ${elapsed}s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
