#!/bin/bash
# make bench-kernel, inside the guest booted by Tests/Kernel/bench.sh: the agent against
# the bare writes a script would issue for the same result, alternately, medians of five
# (of three for the 64 VFs, where the script alone takes 20 s under TCG).
# Every run's result is checked (drivers, nodes' owner and mode) before it counts.
echo "@@UP"
set -u
# The console, for the QMP requests of functions whose output is captured.
exec 3>&1
NIC1=0000:00:03.0 NIC2=0000:00:04.0 PF=0000:01:00.0 HOT=0000:02:00.0 PF64=0000:03:00.0
LOG=/run/bench.log
. /run/work/guest-lib.sh
guest_prepare e1000e nvme vfio-pci
echo "INFO kernel $(uname -r), $(nproc) CPUs; devices: $(ls /sys/bus/pci/devices | tr '\n' ' ')"

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
vfs_of() { for l in /sys/bus/pci/devices/$1/virtfn*; do [ -e "$l" ] && basename "$(readlink "$l")"; done; }
claimed() { for d; do is_on "$d" vfio-pci && node_is "$d" "1000:100 660" || return 1; done; }
# Back to the host drivers, VFs gone, no agent state: what each run starts from.
give_back() {
    local d
    for pf in $PF $PF64; do
        echo 0 > /sys/bus/pci/devices/$pf/sriov_numvfs
        echo 1 > /sys/bus/pci/devices/$pf/sriov_drivers_autoprobe
    done
    for d in $NIC1 $NIC2; do
        echo > /sys/bus/pci/devices/$d/driver_override
        [ -e /sys/bus/pci/devices/$d/driver ] && ! is_on $d e1000e && echo $d > /sys/bus/pci/devices/$d/driver/unbind
        is_on $d e1000e || echo $d > /sys/bus/pci/drivers_probe
    done
    rm -rf /run/bench-state /run/cdi /var/run/cdi/hotplug-agent.json
    udevadm settle --timeout=30
    wait_for 20 eval 'is_on $NIC1 e1000e && is_on $NIC2 e1000e'
}

# The bare writes, as an admin's script issues them: the override, the unbind, the probe,
# the node's owner and mode.
cat > /run/bare.sh <<'SH'
#!/bin/bash
claim() {
    local d=/sys/bus/pci/devices/$1 g
    echo vfio-pci > $d/driver_override
    [ -e $d/driver ] && echo $1 > $d/driver/unbind
    echo $1 > /sys/bus/pci/drivers_probe
    g=$(readlink $d/iommu_group)
    chown 1000:100 /dev/vfio/${g##*/}
    chmod 0660 /dev/vfio/${g##*/}
}
vfs() {
    local pf=/sys/bus/pci/devices/$1 l vf
    echo 0 > $pf/sriov_drivers_autoprobe
    echo $2 > $pf/sriov_numvfs
    for l in $pf/virtfn*; do vf=$(readlink $l); claim ${vf##*/}; done
}
case $1 in
    claims) claim 0000:00:03.0; claim 0000:00:04.0; vfs 0000:01:00.0 2 ;;
    vfs64) vfs 0000:03:00.0 64 ;;
    *) claim $1 ;;
esac
SH
chmod 755 /run/bare.sh

policies() { rm -rf /run/p; mkdir -m 755 /run/p; cat > /run/p/50-bench.toml; }
once() { "$A" run --once --policy-dir /run/p --state-dir /run/bench-state --log-level warning "$@" >> $LOG 2>&1; }
timed() { local start=$(date +%s%N); "$@"; local rc=$?; echo $(( ($(date +%s%N) - start) / 1000 )); return $rc; }
medians() { tr ' ' '\n' <<< "$1" | grep . | median; }
# RUNS times each, alternately from a host given back: the agent's run --once, then the
# script's WHAT; DONE must hold after every run. Prints the agent's and the script's median
# (microseconds) and 1, or 0 when a run left the host otherwise.
alternate() {
    local runs=$1 what=$2 done=$3 agent_us="" script_us="" good=1 run
    for run in $(seq $runs); do
        give_back; agent_us="$agent_us $(timed once)"
        $done || { good=0; echo "INFO agent run $run failed" >&3; tail -n 5 $LOG | sed 's/^/INFO   /' >&3; }
        give_back; script_us="$script_us $(timed /run/bare.sh $what)"
        $done || { good=0; echo "INFO script run $run failed" >&3; }
    done
    echo "$(medians "$agent_us") $(medians "$script_us") $good"
}

# --- claims: 2 e1000e functions, 2 NVMe VFs made and claimed --------------------------
policies <<'TOML'
[[policy]]
name = "nics"
match.slots = ["0000:00:03.0", "0000:00:04.0"]
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
group = "100"
mode = "0660"
TOML
claims_done() { claimed $NIC1 $NIC2 $(vfs_of $PF) && [ "$(vfs_of $PF | wc -l)" = 2 ]; }
read -r a s good < <(alternate 5 claims claims_done)
echo "INFO claims (2 NICs, 2 VFs made and claimed): run --once $((a / 1000)) ms, the script $((s / 1000)) ms (medians of 5): $(ratio $a $s)x; goal <= 1.1x"
check "every timed run left the 4 devices on vfio-pci with their nodes 1000:100 0660" [ $good = 1 ]

# System calls (strace -c, futexes left out): the claims, then the same run with nothing to do;
# three times, since what a run's own events make it do swings from run to run: the median.
syscalls() { awk '$NF != "total" && $NF != "futex" && $4 ~ /^[0-9]+$/ { n += $4 } END { print n + 0 }' "$1"; }
per_claim=()
for _ in 1 2 3; do
    give_back
    strace -f -c -o /run/strace-claims.txt "$A" run --once --policy-dir /run/p --state-dir /run/bench-state \
        --log-level warning >> $LOG 2>&1
    strace -f -c -o /run/strace-settled.txt "$A" run --once --policy-dir /run/p --state-dir /run/bench-state \
        --log-level warning >> $LOG 2>&1
    claims=$(syscalls /run/strace-claims.txt) settled=$(syscalls /run/strace-settled.txt)
    per_claim+=($(( (claims - settled) / 4 )))
done
median=$(printf '%s\n' "${per_claim[@]}" | sort -n | sed -n 2p)
echo "INFO system calls per claim: $median, the median of ${per_claim[*]} (run --once claiming 4 devices, less the same with all settled; the last: $claims and $settled); goal <= 30"
echo "INFO the claims' busiest: $(sort -k4 -n -r /run/strace-claims.txt | awk '$4 ~ /^[0-9]+$/ && $NF != "total" { printf "%s %s, ", $4, $NF }' | cut -c1-200)"
# Where they go: each call by name and the path it names (addresses and numbers folded).
give_back
strace -f -o /run/strace-claims.log "$A" run --once --policy-dir /run/p --state-dir /run/bench-state \
    --log-level warning >> $LOG 2>&1
grep -v -e 'resumed>' -e '^[0-9]* *futex' -e '+++' -e '---' /run/strace-claims.log \
    | sed -E 's/^[0-9]+ +//; s/^([a-z0-9_]+)\(([^"]*"([^"]*)")?.*/\1 \3/' \
    | sed -E 's/[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-9]/ADDR/g; s/[0-9]+/N/g' \
    | sort | uniq -c | sort -rn | head -n 40 | sed 's/^ */INFO   /'

# --- hot-add to node owned: the daemon against a udev RUN+= script -----------------------
policies <<'TOML'
[[policy]]
name = "hot"
match.slots = ["0000:02:00.0"]
driver = "vfio-pci"
owner = "1000"
group = "100"
mode = "0660"
TOML
mkdir -p /run/udev/rules.d
hot_round() {
    local start=$(date +%s%N)
    echo '@@QMP {"execute":"device_add","arguments":{"driver":"e1000e","id":"hot1","bus":"rp-hot"}}' >&3
    wait_for 60 claimed $HOT || echo "INFO hot-add: $HOT is on $(drv $HOT)" >&3
    echo $(( ($(date +%s%N) - start) / 1000 ))
    echo '@@QMP {"execute":"device_del","arguments":{"id":"hot1"}}' >&3
    wait_for 60 eval '[ ! -e /sys/bus/pci/devices/$HOT ]'
    sleep 1
}
daemon_us="" udev_us=""
for run in 1 2 3 4 5; do
    rm -f /run/udev/rules.d/99-bench.rules; udevadm control --reload
    rm -rf /run/bench-state; : > /run/daemon.log
    "$A" run --policy-dir /run/p --state-dir /run/bench-state --log-level info >> /run/daemon.log 2>&1 &
    daemon=$!
    wait_for 30 grep -q "coldplug done" /run/daemon.log
    daemon_us="$daemon_us $(hot_round)"
    kill $daemon; wait $daemon 2>/dev/null
    echo 'ACTION=="add", SUBSYSTEM=="pci", KERNEL=="0000:02:00.0", RUN+="/run/bare.sh %k"' > /run/udev/rules.d/99-bench.rules
    udevadm control --reload
    udev_us="$udev_us $(hot_round)"
done
rm -f /run/udev/rules.d/99-bench.rules; udevadm control --reload
a=$(medians "$daemon_us") s=$(medians "$udev_us")
echo "INFO hot-add to node owned: the daemon $((a / 1000)) ms, a udev RUN+= script $((s / 1000)) ms (medians of 5): $(ratio $a $s)x; goal <= 1.1x"

# --- 64 VFs made and claimed ----------------------------------------------------------
policies <<'TOML'
[[policy]]
name = "pf64"
match.slots = ["0000:03:00.0"]
sriov.autoprobe = false
sriov.num-vfs = 64
[[policy]]
name = "vfs"
match.pf-ids = ["1b36:0010"]
driver = "vfio-pci"
owner = "1000"
group = "100"
mode = "0660"
TOML
vfs64_done() { claimed $(vfs_of $PF64) && [ "$(vfs_of $PF64 | wc -l)" = 64 ]; }
read -r a s good < <(alternate 3 vfs64 vfs64_done)
echo "INFO 64 VFs made and claimed: run --once $((a / 1000)) ms, the script $((s / 1000)) ms (medians of 3): $(ratio $a $s)x"
check "every timed run left 64 VFs on vfio-pci with their nodes 1000:100 0660" [ $good = 1 ]
give_back
echo "@@DONE"
echo o > /proc/sysrq-trigger
sleep 10
