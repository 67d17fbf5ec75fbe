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
