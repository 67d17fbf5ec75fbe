# What both guests' scenarios check with: PASS/FAIL lines, where a device is, its node.
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; }
check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }
drv() { local link; link=$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null) && basename "$link" || echo none; }
is_on() { [ "$(drv "$1")" = "$2" ]; }
group_of() { basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group")"; }
node_is() { [ "$(stat -c '%u:%g %a' "/dev/vfio/$(group_of "$1")" 2>/dev/null)" = "$2" ]; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
wait_for() { local limit=$1; shift; local end=$(( $(now_ms) + limit * 1000 )); until "$@"; do [ "$(now_ms)" -ge $end ] && return 1; sleep 0.05; done; }

# The host's userland as the booted guest's scenarios use it (run.sh's and bench.sh's; the
# systemd guest starts its own): the agent as $A, this kernel's modules as $K (the host
# userland's are not this kernel's, so every module load goes through -d, the agent's too),
# /dev/fd (a bare devtmpfs has none; bash's process substitution needs it), these modules
# loaded, and udev running with every device announced.
guest_prepare() {
    A=/run/work/hotplug-agent K=/run/kmods
    export HOTPLUG_AGENT_MODPROBE=/run/work/modprobe PATH=/usr/sbin:/usr/bin:/sbin:/bin
    printf '#!/bin/sh\nexec /usr/sbin/modprobe -d %s "$@"\n' "$K" > $HOTPLUG_AGENT_MODPROBE
    chmod 755 $HOTPLUG_AGENT_MODPROBE
    ln -sf /proc/self/fd /dev/fd
    local module
    for module; do modprobe -d $K $module || echo "INFO cannot load $module"; done
    /usr/lib/systemd/systemd-udevd --daemon --resolve-names=never 2>/dev/null
    udevadm trigger --action=add >/dev/null 2>&1
    udevadm settle --timeout=30
}
