# The machine both real-kernel tests boot, sourced by run.sh and systemd.sh: one of
# Debian's kernels under QEMU (q35, an emulated VT-d with interrupt remapping, two e1000e
# functions, an NVMe controller with SR-IOV, an empty hotplug root port), a busybox
# initramfs whose /init (Tests/Kernel/init) mounts the host's root read-only over 9p.
# Nothing here writes to this machine's /sys or /dev: everything the guest changes is its own.
#
# The caller sets `flavour` (6.12 or 6.1) and calls, in order:
#   kernel_fetch                 Debian's package, downloaded and unpacked into the cache
#   machine_prepare MODULE...    the work directory, the initramfs with these modules
#   machine_boot LIMIT ARGS...   boots (KVM, else TCG) with extra kernel arguments
# and reads $work/results (PASS/FAIL/INFO lines) and $work/done afterwards.
#
# The kernel package is downloaded with apt-get download and unpacked with dpkg -x into
# $HOTPLUG_AGENT_KERNEL_CACHE (default /var/cache/hotplug-agent/kernels), never installed.
# HOTPLUG_AGENT_ACCEL=tcg|kvm forces an accelerator; HOTPLUG_AGENT_KEEP keeps $work.
machine_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${HOTPLUG_AGENT_KERNEL_CACHE:-/var/cache/hotplug-agent/kernels}

kernel_fetch() {
    local meta
    case $flavour in
        6.12) meta=linux-image-6.12-amd64 ;;
        6.1) meta=linux-image-amd64 ;;
        *) echo "unknown kernel $flavour (6.12 or 6.1)" >&2; exit 2 ;;
    esac
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
}

# The work directory, the initramfs (busybox, /init, the named modules with what they
# need, in load order) and the machine's fixed devices.
machine_prepare() {
    work=$(mktemp -d /tmp/hotplug-agent-kernel.XXXXXX)
    qemu_pid=
    trap machine_cleanup EXIT
    [ -n "${HOTPLUG_AGENT_KEEP:-}" ] && trap - EXIT && echo "keeping $work"
    mkdir -p "$work/initramfs/bin" "$work/initramfs/modules" "$work/initramfs/proc" "$work/initramfs/sys" "$work/initramfs/dev"
    cp /bin/busybox "$work/initramfs/bin/busybox"
    cp "$machine_dir/init" "$work/initramfs/init"
    : > "$work/initramfs/modules/order"
    local module kind path name
    for module in "$@"; do
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
    truncate -s 512M "$work/nvme.img"
    machine=(
        -machine q35,kernel-irqchip=split -smp 2 -m 2048 -nographic -nodefaults -no-reboot -serial stdio
        -kernel "$vmlinuz" -initrd "$work/initrd"
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
}

machine_cleanup() { [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null; rm -rf "$work"; }

qmp() {
    printf '{"execute":"qmp_capabilities"}\n%s\n' "$1" | socat -t 3 - "UNIX-CONNECT:$work/qmp.sock" >> "$work/qmp.log" 2>&1
}

# Runs the guest with one accelerator; returns once it powers off (or `limit` passes).
# The console is read line by line: "@@QMP <json>" is passed to QEMU, "PASS"/"FAIL"/"INFO"
# lines are the scenarios (appended to $work/results), "@@UP" says the guest's userland
# started, "@@DONE" that its scenarios ended.
boot_once() {
    local accel=$1 limit=$2; shift 2
    local cpu=max option=$accel
    [ "$accel" = kvm ] && cpu=host
    # TCG in one thread for both vCPUs: with a thread per vCPU the guest's kernel text
    # patching (static keys, an int3 first) raced with the other vCPU's translated code,
    # and a guest died now and then with "Oops: int3" in code being patched.
    [ "$accel" = tcg ] && option=tcg,thread=single
    rm -f "$work/up" "$work/done"
    mkfifo "$work/console" 2>/dev/null || true
    qemu-system-x86_64 -accel "$option" -cpu "$cpu" "${machine[@]}" \
        -append "console=ttyS0 quiet loglevel=3 intel_iommu=on panic=-1 $*" > "$work/console" 2>&1 &
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
        if [ $((now - started)) -gt "$limit" ]; then echo "FAIL the guest did not finish within ${limit}s" | tee -a "$work/results"; break; fi
        sleep 1
    done
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
    wait "$reader" 2>/dev/null || true
    qemu_pid=
    [ -e "$work/up" ]
}

# Boots with KVM when /dev/kvm runs guests, else (or when KVM fails to) with TCG.
machine_boot() {
    local limit=$1; shift
    if [ -z "${accel:-}" ]; then
        accel=${HOTPLUG_AGENT_ACCEL:-}
        if [ -z "$accel" ]; then
            accel=tcg
            [ -r /dev/kvm ] && [ -w /dev/kvm ] && accel=kvm
        fi
    fi
    if ! boot_once "$accel" "$limit" "$@" && [ "$accel" = kvm ] && [ -z "${HOTPLUG_AGENT_ACCEL:-}" ]; then
        echo "KVM did not run the guest; falling back to TCG"
        accel=tcg
        boot_once tcg "$limit" "$@" || true
    fi
}

# The summary: "N passed, M failed"; fails when any did or the guest did not finish.
machine_summary() {
    local name=$1 elapsed=$2
    local passed failed
    passed=$(grep -c "^PASS" "$work/results" 2>/dev/null || true); passed=${passed:-0}
    failed=$(grep -c "^FAIL" "$work/results" 2>/dev/null || true); failed=${failed:-0}
    if [ ! -e "$work/done" ]; then
        echo "FAIL the guest did not complete its scenarios; the end of its console:"
        tail -n 40 "$work/console.log" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
    echo "$name ($accel): ${elapsed}s"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
