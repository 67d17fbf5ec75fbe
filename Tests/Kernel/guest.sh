#!/bin/bash
# The scenarios, inside the guest booted by run.sh. Each asserts what the kernel shows
# afterwards (driver links, /dev nodes, sysfs attributes, config space), not what the
# agent logged. "@@QMP <json>" lines ask the host to act (hot-add, hot-remove).
echo "@@UP"
set -u
LOG=/run/agent.log
NIC1=0000:00:03.0 NIC2=0000:00:04.0 NVME=0000:01:00.0 HOT=0000:02:00.0

. /run/work/guest-lib.sh
policies() { rm -rf /run/p; mkdir -m 755 /run/p; cat > /run/p/50-test.toml; }
once() { "$A" run --once --policy-dir /run/p --log-level info "$@" >> $LOG 2>&1; }
contains() { grep -qF -- "$2" <<< "$1"; }
iface_of() { ls "/sys/bus/pci/devices/$1/net" 2>/dev/null | head -n1; }
drivers_now() { for d in /sys/bus/pci/devices/*; do echo "$(basename "$d") $(drv "$(basename "$d")")"; done; }

guest_prepare e1000e nvme btrfs
echo "INFO kernel $(uname -r); devices: $(ls /sys/bus/pci/devices | tr '\n' ' ')"

# --- record, then simulate: the prediction must match what the real run does ------------
policies <<'TOML'
[[policy]]
name = "nic1"
match.slots = ["0000:00:03.0"]
driver = "vfio-pci"
owner = "1000"
group = "100"
mode = "0660"
[[policy]]
name = "nvme-pf"
match.slots = ["0000:01:00.0"]
sriov.autoprobe = false
sriov.num-vfs = 2
[[policy]]
name = "nvme-vfs"
match.pf-ids = ["1b36:0010"]
driver = "vfio-pci"
owner = "1000"
mode = "0660"
TOML
"$A" record > /run/record.json 2>>$LOG
predicted=$("$A" simulate --host /run/record.json --policy-dir /run/p 2>>$LOG | sed -n '/^== What changed/,$p' \
    | sed -n 's/^\(0000:[0-9a-f:.]*\) \[[^]]*\]: \([^ ]*\( driver\)\?\) -> \([^ ]*\).*/\1 \4/p' | sed 's/ no$/ none/' | sort)
before=$(drivers_now)

# --- claim by slot, the node's owner, group and mode; SR-IOV with autoprobe off -----------
start=$(now_ms)
once; rc=$?
elapsed=$(( $(now_ms) - start ))
echo "INFO run --once claimed 0000:00:03.0 and made and claimed 2 VFs in ${elapsed} ms"
check "run --once exits 0 after the VFs it made are claimed" [ $rc = 0 ]
check "claim by slot: $NIC1 is on vfio-pci" is_on $NIC1 vfio-pci
check "claim by slot: /dev/vfio/$(group_of $NIC1) is 1000:100 0660" node_is $NIC1 "1000:100 660"
check "the other function $NIC2 stays on e1000e" is_on $NIC2 e1000e
check "the PF has 2 VFs and autoprobe 0" [ "$(cat /sys/bus/pci/devices/$NVME/sriov_numvfs) $(cat /sys/bus/pci/devices/$NVME/sriov_drivers_autoprobe)" = "2 0" ]
vfs=$(for l in /sys/bus/pci/devices/$NVME/virtfn*; do basename "$(readlink "$l")"; done)
all_vfio=1 seen=""
for vf in $vfs; do
    is_on "$vf" vfio-pci && node_is "$vf" "1000:0 660" || all_vfio=0
    seen="$seen $vf:$(drv "$vf"):/dev/vfio/$(group_of "$vf"):$(stat -c '%u:%g:%a' "/dev/vfio/$(group_of "$vf")" 2>&1)"
done
check "both VFs on vfio-pci with their nodes owned 1000 0660 ($seen)" [ "$all_vfio" = 1 -a -n "$vfs" ]
check "no VF was ever probed by nvme" [ -z "$(dmesg | grep -E 'nvme 0000:01:00\.[1-9]')" ]
after=$(drivers_now)
real=$(join <(echo "$before") <(echo "$after") -a 2 -e none -o 0,1.2,2.2 | awk '$2 != $3 { print $1, $3 }' | sort)
if [ "$predicted" = "$real" ]; then
    pass "simulate on the guest's record predicted exactly the drivers the real run produced"
else
    fail "simulate predicted [$(echo $predicted)] but the kernel shows [$(echo $real)]"
fi

# --- config space writes, read back from the kernel --------------------------------------
policies <<'TOML'
[[policy]]
name = "nic1"
match.slots = ["0000:00:03.0"]
driver = "vfio-pci"
config = ["3c.b=0b"]
TOML
once
check "config space: byte 0x3c of $NIC1 reads 0b" [ "$(od -An -tx1 -j 60 -N 1 /sys/bus/pci/devices/$NIC1/config | tr -d ' ')" = 0b ]

# --- an interface that is up is the host's; allow-in-use takes it ------------------------
IFACE=$(iface_of $NIC2)
ip link set "$IFACE" up
policies <<'TOML'
[[policy]]
name = "nic2"
match.slots = ["0000:00:04.0"]
driver = "vfio-pci"
TOML
plan=$("$A" plan --policy-dir /run/p 2>>$LOG)
once
check "an interface that is up ($IFACE) is refused, and plan says why" contains "$plan" "refused: unbind e1000e: the host uses it: network interface $IFACE is up"
check "it stays on e1000e" is_on $NIC2 e1000e
printf 'allow-in-use = true\n' >> /run/p/50-test.toml
once
check "allow-in-use takes it" is_on $NIC2 vfio-pci

# --- a mounted btrfs keeps the NVMe with the host ------------------------------------------
mkfs.btrfs -q -f /dev/nvme0n1 >/dev/null 2>&1
mkdir -p /run/mnt && mount -t btrfs /dev/nvme0n1 /run/mnt
policies <<'TOML'
[[policy]]
name = "nvme"
match.slots = ["0000:01:00.0"]
driver = "vfio-pci"
TOML
plan=$("$A" plan --policy-dir /run/p 2>>$LOG)
once
check "a mounted btrfs (anonymous 0:NN in mountinfo) keeps the NVMe: plan says why" contains "$plan" "block device nvme0n1 is mounted on /run/mnt"
check "the NVMe stays on nvme" is_on $NVME nvme
umount /run/mnt

# --- the links the in-use check reads as written are the kernel's own form -----------------
# Each entry of a class or bus directory, and each controller link of an NVMe subsystem, is
# relative and leads to a real directory: joined as text it names where it leads.
written_as_led() {
    local entry target
    for entry in "$@"; do
        [ -L "$entry" ] || continue
        target=$(readlink "$entry") && [ "${target#/}" = "$target" ] || return 1
        [ "$(realpath -m -s "$(dirname "$entry")/$target")" = "$(realpath "$entry")" ] || return 1
    done
}
check "every link of /sys/class/net, /sys/class/block and /sys/bus/pci/devices names where it leads" \
    written_as_led /sys/class/net/* /sys/class/block/* /sys/bus/pci/devices/*
check "so does each NVMe subsystem's controller link" written_as_led /sys/devices/virtual/nvme-subsystem/*/nvme[0-9]*
check "the NVMe's namespace link is relative" [ "$(readlink /sys/class/block/nvme0n1 | cut -c1-14)" = ../../devices/ ]

# --- a module's PCI driver is announced by a drivers uevent, which the daemon receives -----
# (it keeps the registered and VFIO drivers until then)
policies <<'TOML'
[[policy]]
name = "nothing"
match.slots = ["0000:7f:00.0"]
driver = "vfio-pci"
TOML
"$A" run --policy-dir /run/p --log-level debug > /run/drivers.log 2>&1 &
DAEMON=$!
wait_for 30 grep -q "coldplug done" /run/drivers.log
modprobe -d $K e100
check "a module's driver is announced to the daemon: event add drivers /bus/pci/drivers/e100" \
    wait_for 10 grep -q "event add drivers /bus/pci/drivers/e100" /run/drivers.log
kill -TERM $DAEMON; wait $DAEMON

# --- the daemon: hot-add latency, hot-remove, SIGHUP returning devices --------------------
policies <<'TOML'
[[policy]]
name = "nic1"
match.slots = ["0000:00:03.0"]
driver = "vfio-pci"
[[policy]]
name = "nic2"
match.slots = ["0000:00:04.0"]
driver = "vfio-pci"
allow-in-use = true
[[policy]]
name = "hot"
match.slots = ["0000:02:00.0"]
driver = "vfio-pci"
owner = "1000"
group = "100"
mode = "0660"
TOML
"$A" run --policy-dir /run/p --log-level info >> /run/daemon.log 2>&1 &
DAEMON=$!
wait_for 30 grep -q "coldplug done" /run/daemon.log
# No policy wants the PF any more: the count it had (0) and its autoprobe (1) come back.
check "the PF's policy removed: its VFs go and autoprobe is back (0 VFs, autoprobe 1)" \
    wait_for 20 eval '[ "$(cat /sys/bus/pci/devices/$NVME/sriov_numvfs) $(cat /sys/bus/pci/devices/$NVME/sriov_drivers_autoprobe)" = "0 1" ]'
start=$(now_ms)
echo '@@QMP {"execute":"device_add","arguments":{"driver":"e1000e","id":"hot1","bus":"rp-hot"}}'
if wait_for 30 eval 'is_on $HOT vfio-pci && node_is $HOT "1000:100 660"'; then
    echo "INFO hot-add: $(( $(now_ms) - start )) ms from device_add to /dev/vfio/$(group_of $HOT) owned 1000:100 0660"
    pass "daemon hot-add: $HOT claimed and its node owned"
else
    fail "daemon hot-add: $HOT is on $(drv $HOT)"
fi
echo '@@QMP {"execute":"device_del","arguments":{"id":"hot1"}}'
check "daemon hot-remove: $HOT is gone" wait_for 30 eval '[ ! -e /sys/bus/pci/devices/$HOT ]'
check "the hot-removed device's origin record is gone" wait_for 5 eval '[ ! -e /run/hotplug-agent/origins/$HOT ] && [ ! -L /run/hotplug-agent/origins/$HOT ]'

# A VM holds NIC2: a policy removal must not pull it out, nor block the agent in the kernel.
G2=$(group_of $NIC2)
/run/work/vfio-holder "$G2" $NIC2 > /run/holder.out 2>&1 &
HOLDER=$!
wait_for 10 grep -q held /run/holder.out
check "a VMM-like process holds $NIC2's device fd" grep -q held /run/holder.out
rm -f /run/p/50-test.toml
kill -HUP $DAEMON
check "SIGHUP without the policy returns $NIC1 to e1000e" wait_for 30 is_on $NIC1 e1000e
check "and its interface is back" wait_for 10 eval '[ -n "$(iface_of $NIC1)" ]'
sleep 2
check "the held $NIC2 stays on vfio-pci" is_on $NIC2 vfio-pci
plan=$("$A" plan --policy-dir /run/p 2>>$LOG)
check "plan says it waits for the holder" contains "$plan" "waiting: put back on e1000e: /dev/vfio/$G2 is open by vfio-holder (pid $HOLDER)"
check "the daemon never blocked in the kernel's unbind" eval '! grep -q "stuck:" /run/daemon.log && ! dmesg | grep -q "Relaying device request"'
kill $HOLDER; wait $HOLDER 2>/dev/null
check "once the holder closes it, $NIC2 goes back to e1000e (within the 10 s retry)" wait_for 20 is_on $NIC2 e1000e
kill -TERM $DAEMON; wait $DAEMON
check "the daemon exits 0 on SIGTERM" [ $? = 0 ]

# --- what else holds a device: its descriptor after the group node closed, a BAR mapping
# after every descriptor closed, a thread's own descriptor table. The agent waits each time.
# NIC2 claimed by a policy of its own (its interface may be up: allow-in-use).
claim_nic2() {
    policies <<'TOML'
[[policy]]
name = "nic2"
match.slots = ["0000:00:04.0"]
driver = "vfio-pci"
allow-in-use = true
TOML
    once
}
for mode in device mmap thread; do
    claim_nic2
    G2=$(group_of $NIC2)
    /run/work/vfio-holder "$G2" $NIC2 $mode > /run/holder.out 2>&1 &
    HOLDER=$!
    wait_for 10 grep -q held /run/holder.out
    check "$mode: a VMM-like process holds $NIC2 on vfio-pci" eval 'grep -q held /run/holder.out && is_on $NIC2 vfio-pci'
    rm -f /run/p/50-test.toml
    plan=$("$A" plan --policy-dir /run/p 2>>$LOG)
    check "$mode: plan waits, naming the holder (pid $HOLDER)" contains "$plan" "by vfio-holder (pid $HOLDER)"
    timeout 30 "$A" run --once --policy-dir /run/p >> $LOG 2>&1; rc=$?
    check "$mode: run --once returns, $NIC2 stays on vfio-pci, nothing blocked in the kernel" \
        eval '[ $rc != 124 ] && is_on $NIC2 vfio-pci && ! dmesg | grep -q "Relaying device request"'
    kill $HOLDER; wait $HOLDER 2>/dev/null
    once
    check "$mode: let go, $NIC2 goes back to e1000e" is_on $NIC2 e1000e
done

# An agent in a PID namespace of its own (a container without the host's) cannot see a VMM
# elsewhere: nothing holds NIC2 here, yet it waits instead of returning it, saying why.
claim_nic2
rm -f /run/p/50-test.toml
plan=$(unshare --pid --fork --mount-proc "$A" plan --policy-dir /run/p 2>>$LOG)
check "in a PID namespace of its own, plan waits: it cannot see who may hold $NIC2" \
    contains "$plan" "not the host's: it cannot see the processes that may hold the device"
unshare --pid --fork --mount-proc "$A" run --once --policy-dir /run/p >> $LOG 2>&1
check "and run --once there leaves $NIC2 on vfio-pci" is_on $NIC2 vfio-pci
once
check "the same run in the host's namespace returns it to e1000e" is_on $NIC2 e1000e

# --- a PF whose driver cannot configure SR-IOV: a failure, not "the device left" ----------
policies <<'TOML'
[[policy]]
name = "stub-pf"
match.slots = ["0000:01:00.0"]
driver = "pci-stub"
sriov.num-vfs = 1
TOML
once; rc=$?
check "sriov_numvfs ENOENT from pci-stub fails run --once (exit 1)" [ $rc = 1 ]
check "and is logged as a failure naming ENOENT, not as a device that left" eval 'grep -q "failed: set sriov_numvfs to 1: .*ENOENT" $LOG && ! grep -q "left during set sriov_numvfs" $LOG'

# --- VFs destroyed and made again while the daemon runs, as a VM manager does all day -----
# Each set is claimed as it comes; the kernel numbers the new VFs' groups with the numbers it
# freed (the lowest free, which the simulator copies); the daemon does not grow.
policies <<'TOML'
[[policy]]
name = "nvme-vfs"
match.pf-ids = ["1b36:0010"]
driver = "vfio-pci"
owner = "1000"
mode = "0660"
TOML
once
check "no policy for the PF: it is back on nvme" is_on $NVME nvme
echo 0 > /sys/bus/pci/devices/$NVME/sriov_drivers_autoprobe
"$A" run --policy-dir /run/p --log-level info > /run/churn.log 2>&1 &
DAEMON=$!
wait_for 30 grep -q "coldplug done" /run/churn.log
vf_groups() { for l in /sys/bus/pci/devices/$NVME/virtfn*; do group_of "$(basename "$(readlink "$l")")"; done; }
vfs_claimed() {
    local l vf n=0
    for l in /sys/bus/pci/devices/$NVME/virtfn*; do
        vf=$(basename "$(readlink "$l")")
        is_on "$vf" vfio-pci && node_is "$vf" "1000:0 660" && n=$((n + 1))
    done
    [ $n = 2 ]
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' /proc/$DAEMON/status; }
vf_inodes() { for l in /sys/bus/pci/devices/$NVME/virtfn*; do stat -L -c %i "$l"; done; }
cycles=8 claimed_each=1 same_groups=1 first_groups="" inodes="" start=$(now_ms)
for i in $(seq $cycles); do
    echo 0 > /sys/bus/pci/devices/$NVME/sriov_numvfs
    echo 2 > /sys/bus/pci/devices/$NVME/sriov_numvfs
    wait_for 20 vfs_claimed || claimed_each=0
    inodes="$inodes $(vf_inodes | tr '\n' ' ')"
    groups=$(vf_groups | tr '\n' ' ')
    [ -z "$first_groups" ] && first_groups=$groups
    [ "$groups" = "$first_groups" ] || same_groups=0
    [ $i = 2 ] && rss_early=$(rss_kib)
done
rss_late=$(rss_kib)
echo "INFO VF churn: $cycles cycles of 2 VFs in $(( $(now_ms) - start )) ms;" \
    "daemon resident ${rss_early} KiB after 2, ${rss_late} KiB after $cycles"
check "VF churn: both VFs claimed, nodes owned, after each of $cycles cycles" [ $claimed_each = 1 ]
check "VF churn: the kernel gave the new VFs the group numbers it freed ($first_groups) each time" [ $same_groups = 1 ]
# The agent reads a known device by path and takes the reading only where the directory's
# inode is the one it knew: sysfs must never give a new device's directory an old number.
distinct=$(tr ' ' '\n' <<< "$inodes" | grep . | sort -u | wc -l)
check "VF churn: each VF made again at the same address has a new inode ($distinct of $((2 * cycles)))" \
    [ "$distinct" = $((2 * cycles)) ]
check "VF churn: the daemon grew by less than 1 MiB (a guard; the figure is the bench's)" \
    [ $(( rss_late - rss_early )) -lt 1024 ]
echo 0 > /sys/bus/pci/devices/$NVME/sriov_numvfs
echo 1 > /sys/bus/pci/devices/$NVME/sriov_drivers_autoprobe
kill -TERM $DAEMON; wait $DAEMON

# --- a real VMM as an ordinary user, and the CDI spec ------------------------------------
# QEMU (this machine's, TCG inside the guest, paused with -S) runs as user 1000 with
# -device vfio-pci on devices the daemon claimed for that user: it opens the container and
# the group node, takes the device, maps its BARs and pins its 64 MiB for DMA. -daemonize
# returns 0 only once all of that worked.
# limits.conf names the user, or (none on this host) uid 1000 alone as the range ":1000".
vm_name=$(getent passwd 1000 | cut -d: -f1)
vm_user=${vm_name:-1000} vm_domain=${vm_name:-:1000}
: > /run/limits.conf
mount --bind /run/limits.conf /etc/security/limits.conf
mkdir -p -m 0777 /run/vm
qemu_as_user() {  # ADDRESS MEMLOCK NAME
    prlimit --memlock="$2:$2" setpriv --reuid=1000 --regid=100 --clear-groups \
        qemu-system-x86_64 -machine q35 -accel tcg -m 64 -nodefaults -display none -S \
        -daemonize -pidfile "/run/vm/$3.pid" -device "vfio-pci,host=$1" >> /run/vm/qemu.log 2>&1
}
spec=/var/run/cdi/hotplug-agent.json
spec_names() { grep -q "\"name\" : \"$1\"" $spec 2>/dev/null; }
policies <<'TOML'
[[policy]]
name = "vm"
match.slots = ["0000:00:04.0", "0000:02:00.0"]
driver = "vfio-pci"
allow-in-use = true
owner = "1000"
group = "100"
mode = "0660"
TOML
doctor=$("$A" doctor --policy-dir /run/p 2>&1)
echo "INFO doctor on the VM user's limits: $(grep -F "limits for" <<< "$doctor")"
check "doctor warns that $vm_user's memlock limit is too low for a VM" contains "$doctor" "limits for $vm_user: memlock is"
"$A" run --policy-dir /run/p --log-level debug > /run/vm-daemon.log 2>&1 &
DAEMON=$!
wait_for 30 grep -q "coldplug done" /run/vm-daemon.log
G2=$(group_of $NIC2)
check "the daemon claimed $NIC2 for user 1000" node_is $NIC2 "1000:100 660"
check "its CDI spec names $NIC2 as vm-0 and by address, with /dev/vfio/vfio and /dev/vfio/$G2" wait_for 5 eval \
    'spec_names vm-0 && spec_names $NIC2 && grep -q "\"/dev/vfio/$G2\"" $spec && grep -q "\"/dev/vfio/vfio\"" $spec'
check "the spec validates against CDI's schema" eval 'python3 /run/work/cdi/validate.py $spec > /dev/null'

# Debian's podman runs a container from a directory (nothing pulled) with the device as the
# spec names it; inside, its nodes carry the policy's owner, group and mode.
mkdir -p /sys/fs/cgroup /dev/shm && mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mkdir -p /run/rootfs/bin /run/rootfs/dev /run/rootfs/proc /run/rootfs/sys /run/rootfs/etc
cp /bin/busybox /run/rootfs/bin/busybox
in_container() {  # DEVICE: the container's view of its VFIO nodes
    podman --root /run/containers/storage --runroot /run/containers/run --storage-driver vfs \
        --network-config-dir /run/containers/networks \
        --cgroup-manager cgroupfs --events-backend file \
        run --rm --network none --security-opt apparmor=unconfined --device "$1" --rootfs /run/rootfs \
        /bin/busybox sh -c 'for n in /dev/vfio/*; do /bin/busybox stat -c "%n %u:%g %a %t:%T" "$n"; done' 2>&1
}
started=$(now_ms)
seen=$(in_container hotplug-agent.io/vfio=vm-0)
echo "INFO podman run with hotplug-agent.io/vfio=vm-0: $(( $(now_ms) - started )) ms; the container saw: $(echo $seen)"
check "podman: the container has /dev/vfio/$G2 as 1000:100 0660 and /dev/vfio/vfio" eval \
    'contains "$seen" "/dev/vfio/$G2 1000:100 660" && contains "$seen" "/dev/vfio/vfio 0:0 666"'
seen_by_address=$(in_container hotplug-agent.io/vfio=$NIC2)
check "podman: the address names the same device" contains "$seen_by_address" "/dev/vfio/$G2 1000:100 660"

qemu_as_user $NIC2 8388608 nic2; rc=$?
check "QEMU as $vm_user under the default 8 MiB memlock cannot pin its memory" \
    eval '[ $rc != 0 ] && grep -q "Cannot allocate memory" /run/vm/qemu.log'
printf '%s hard memlock unlimited\n%s hard nofile 8192\n' "$vm_domain" "$vm_domain" > /run/limits.conf
doctor=$("$A" doctor --policy-dir /run/p 2>&1)
check "with the limit doctor asks for, doctor passes it" contains "$doctor" "PASS limits for $vm_user: memlock unlimited"

start=$(now_ms)
echo '@@QMP {"execute":"device_add","arguments":{"driver":"e1000e","id":"hot2","bus":"rp-hot"}}'
wait_for 30 eval 'is_on $HOT vfio-pci && node_is $HOT "1000:100 660"'
owned=$(( $(now_ms) - start ))
wait_for 5 spec_names vm-1
echo "INFO hot-add to the CDI spec naming it: $(( $(now_ms) - start )) ms"
if qemu_as_user $HOT unlimited hot; then
    echo "INFO hot-add to QEMU started on it as $vm_user: $(( $(now_ms) - start )) ms (node owned after $owned ms)"
    pass "a hot-added device: QEMU as $vm_user starts on it"
else
    fail "QEMU could not start on the hot-added $HOT: $(tail -n 3 /run/vm/qemu.log | tr '\n' ' ')"
fi
check "the spec names the hot-added device as vm-1" spec_names vm-1
kill "$(cat /run/vm/hot.pid 2>/dev/null)" 2>/dev/null
wait_for 10 eval '! kill -0 $(cat /run/vm/hot.pid) 2>/dev/null'
echo '@@QMP {"execute":"device_del","arguments":{"id":"hot2"}}'
check "hot-removed, it leaves the spec" wait_for 30 eval '[ ! -e /sys/bus/pci/devices/$HOT ] && ! spec_names vm-1 && ! spec_names $HOT'

check "QEMU as $vm_user starts on $NIC2" qemu_as_user $NIC2 unlimited nic2
QEMU=$(cat /run/vm/nic2.pid 2>/dev/null)
check "it runs as uid 1000, holds /dev/vfio/$G2, maps the device and pins its memory (VmLck >= 64 MiB)" eval \
    '[ "$(awk "/^Uid:/ { print \$2 }" /proc/$QEMU/status)" = 1000 ] && ls -l /proc/$QEMU/fd | grep -q "/dev/vfio/$G2" \
     && grep -q "vfio-device" /proc/$QEMU/maps && [ "$(awk "/^VmLck:/ { print \$2 }" /proc/$QEMU/status)" -ge 65536 ]'
: > /run/p/50-test.toml
reloaded=$(now_ms)
kill -HUP $DAEMON
check "the policy gone, $NIC2 waits for QEMU, named with its pid" wait_for 10 \
    grep -q "waiting: put back on e1000e: /dev/vfio/$G2 is open by qemu-system-x86 (pid $QEMU)" /run/vm-daemon.log
wait_for 10 eval '[ ! -e $spec ]'
echo "INFO the policy removed: the CDI spec gone after $(( $(now_ms) - reloaded )) ms"
check "it stays on vfio-pci for QEMU, and no policy claims it: the spec, naming no device, is gone" \
    eval 'is_on $NIC2 vfio-pci && [ ! -e $spec ]'
kill $QEMU
wait_for 10 eval '! kill -0 $QEMU 2>/dev/null'
quit=$(now_ms)
wait_for 20 is_on $NIC2 e1000e; back=$(( $(now_ms) - quit ))
echo "INFO QEMU quit: $NIC2 back on e1000e after $back ms"
[ "$back" -le 1000 ] || grep -E "exited|watching|pidfd|$NIC2" /run/vm-daemon.log | tail -n 12 | sed 's/^/INFO daemon: /'
check "once QEMU quits, $NIC2 is back on e1000e within a second (${back} ms)" [ "$back" -le 1000 ]
seen=$(in_container hotplug-agent.io/vfio=vm-0)
check "podman: the returned device is refused as an unresolvable CDI device" contains "$seen" "unresolvable CDI devices"
kill -TERM $DAEMON; wait $DAEMON
umount /etc/security/limits.conf

echo "@@DONE"
echo o > /proc/sysrq-trigger
sleep 10
