#!/bin/bash
# The scenarios under a real systemd (PID 1 in the guest systemd.sh boots), run by
# hp-test.service once multi-user.target is up. Boot 1 installs the package and tries the
# unit in its sandbox; boot 2 (the same disk) shows that a disabled unit stays off, then
# removes and purges the package. Each check asserts what the kernel and systemd show.
echo "@@UP"
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
. /var/lib/hp-test/guest-lib.sh
NIC1=0000:00:03.0 NIC2=0000:00:04.0 HOT=0000:02:00.0
phase=$(sed -n 's/.*\<hp.phase=\([^ ]*\).*/\1/p' /proc/cmdline)
unit=hotplug-agent.service
policies=/etc/hotplug-agent/policies.d
metrics=/var/lib/prometheus/node-exporter/hotplug_agent.prom
state() { systemctl show -p "$1" --value $unit; }
journal() { journalctl -b -u $unit -o cat --no-pager "$@"; }
has_cap() { local caps=$((16#$(awk '/^CapEff/ { print $2 }' "/proc/$1/status"))); (( (caps >> $2) & 1 )); }
udevadm settle --timeout=60
echo "INFO phase $phase under systemd $(systemctl --version | awk 'NR == 1 { print $2 }'), kernel $(uname -r)"

if [ "$phase" = 1 ]; then
    check "vfio-pci is not loaded before the agent runs" eval '[ ! -d /sys/module/vfio_pci ]'
    check "$NIC1 starts on e1000e" is_on $NIC1 e1000e
    mkdir -p $policies /var/lib/prometheus/node-exporter
    cat > $policies/50-nic.toml <<'TOML'
[[policy]]
name = "nic1"
match.slots = ["0000:00:03.0"]
driver = "vfio"
owner = "1000"
group = "100"
mode = "0660"

[[policy]]
name = "hot"
match.slots = ["0000:02:00.0"]
driver = "vfio-pci"
owner = "1000"
group = "100"
mode = "0660"
TOML
    dpkg -i /var/lib/hp-test/hotplug-agent.deb > /run/dpkg.log 2>&1; rc=$?
    check "dpkg -i installs the package" eval '[ $rc -eq 0 ]'
    check "the package enabled the unit" eval '[ "$(systemctl is-enabled $unit)" = enabled ]'
    # Type=notify: the start job (the package's) ends only with READY=1, after coldplug.
    check "the package started it and it reached READY=1" eval '[ "$(state ActiveState)/$(state SubState)" = active/running ]'
    [ "$(state ActiveState)" = active ] || journal --no-pager | tail -n 15 | sed 's/^/INFO journal: /'
    check "READY=1 came after coldplug: $NIC1 is on vfio-pci already" is_on $NIC1 vfio-pci
    check "the sandboxed agent loaded vfio-pci" eval '[ -d /sys/module/vfio_pci ]'
    check "and handed /dev/vfio/$(group_of $NIC1) to 1000:100, mode 0660" node_is $NIC1 "1000:100 660"
    pid=$(state MainPID)
    check "it runs as a user of its own (DynamicUser), not root" eval '[ "$(stat -c %u /proc/$pid)" -ne 0 ]'
    check "with the unit's capabilities: CAP_SYS_ADMIN, not CAP_SYS_RAWIO nor CAP_NET_ADMIN" eval \
        'has_cap $pid 21 && ! has_cap $pid 17 && ! has_cap $pid 12'
    check "status says $NIC1 is settled (exit 0)" eval 'hotplug-agent status > /run/status.out 2>&1 && grep -q "^$NIC1 .*settled" /run/status.out'
    # Run as root, status reads the origin record the daemon's dynamic user wrote.
    check "and, as root, where the dynamic user's daemon moved it from" grep -q "^$NIC1 .*from e1000e: settled" /run/status.out
    check "the metrics file is written through ReadWritePaths, readable by others" wait_for 10 eval \
        'grep -qx "hotplug_agent_devices{policy=\"nic1\",state=\"settled\"} 1" $metrics && [ "$(stat -c %a $metrics)" = 644 ]'

    check "the sandboxed unit keeps the CDI spec in /run/cdi (0755, made before the sandbox), naming nic1-0" wait_for 10 eval \
        'grep -q "\"name\" : \"nic1-0\"" /run/cdi/hotplug-agent.json && [ "$(stat -c %a /run/cdi)" = 755 ]'

    # systemctl reload returns once the new policies are in force: the node's mode is
    # already the new one when it returns (the inotify reload would wait 0.5 s first).
    sed -i 's/^mode = "0660"$/mode = "0640"/' $policies/50-nic.toml
    systemctl reload $unit
    check "systemctl reload succeeds and returns with the new mode in force" node_is $NIC1 "1000:100 640"
    check "the daemon said RELOADING=1 and READY=1 (reloads counted by systemd's state)" eval \
        '[ "$(state ActiveState)" = active ] && journal | grep -q "policies reloaded"'

    echo '@@QMP {"execute":"device_add","arguments":{"driver":"e1000e","id":"hot1","bus":"rp-hot"}}'
    check "a hot-added device is claimed by the running unit" wait_for 30 eval 'is_on $HOT vfio-pci && node_is $HOT "1000:100 640"'

    cat > $policies/60-broken.toml <<'TOML'
[[policy]]
name = "broken"
match.slots = ["0000:00:04.0"]
driver = "no-such-driver"
TOML
    systemctl reload $unit
    check "journalctl -p err shows the failed claim of $NIC2" wait_for 10 eval \
        'journal -p err | grep -q "$NIC2"'
    check "and only errors: no info line passes -p err" eval '! journal -p err | grep -q "coldplug done"'
    check "status exits 3 with the failure" eval 'hotplug-agent status > /run/status.out 2>&1; [ $? -eq 3 ] && grep -q "^$NIC2 .*failed" /run/status.out'

    # The records of where devices came from live in the runtime directory the dynamic
    # user owns: read back through the trusted-file walk, they return the NIC on a reload.
    mv $policies/50-nic.toml /run/50-nic.toml
    systemctl reload $unit
    check "a policy removed, the reload returns $NIC1 to e1000e (its origin record believed)" \
        wait_for 20 is_on $NIC1 e1000e
    check "with no device claimed any more (the file held both policies), the CDI spec is gone" \
        wait_for 10 eval '[ ! -e /run/cdi/hotplug-agent.json ]'
    mv /run/50-nic.toml $policies/50-nic.toml
    systemctl reload $unit
    check "put back, it is claimed again" wait_for 20 eval 'is_on $NIC1 vfio-pci && node_is $NIC1 "1000:100 640"'
    check "and listed in the CDI spec again" wait_for 10 eval 'grep -q "\"name\" : \"nic1-0\"" /run/cdi/hotplug-agent.json'
    # The runtime directory outlives a restart (RuntimeDirectoryPreserve=yes): a restarted
    # daemon numbers its reloads on from the record there, so the first reload after a
    # restart is answered too (it counted from 1 again, and ExecReload waited out its time).
    systemctl restart $unit
    check "after systemctl restart, the first systemctl reload succeeds at once" eval \
        'timeout 20 systemctl reload $unit && [ "$(state ActiveState)" = active ]'

    systemctl stop $unit
    check "systemctl stop is clean (inactive, result success, exit 0)" eval \
        '[ "$(state ActiveState)/$(state Result)/$(state ExecMainStatus)" = inactive/success/0 ]'
    check "stopping leaves the claimed devices where they are" eval 'is_on $NIC1 vfio-pci && is_on $HOT vfio-pci'
    systemctl disable $unit 2>/dev/null
    check "systemctl disable" eval '[ "$(systemctl is-enabled $unit)" = disabled ]'
    echo '@@QMP {"execute":"device_del","arguments":{"id":"hot1"}}'
    wait_for 30 eval '[ ! -e /sys/bus/pci/devices/$HOT ]'
    echo '@@QMP {"execute":"device_add","arguments":{"driver":"e1000e","id":"hot2","bus":"rp-hot"}}'
    wait_for 30 eval '[ -e /sys/bus/pci/devices/$HOT ]' && udevadm settle --timeout=30
    sleep 3
    check "disabled, a hot-add does not start it" eval '[ "$(state ActiveState)" = inactive ] && is_on $HOT e1000e'
    echo "@@PHASE 1 done"
    systemctl poweroff
    exit 0
fi

# --- Boot 2: the unit was disabled before the reboot ---------------------------------
check "after a reboot the disabled unit stays off" eval '[ "$(state ActiveState)" = inactive ] && is_on $NIC1 e1000e'
echo '@@QMP {"execute":"device_add","arguments":{"driver":"e1000e","id":"hot3","bus":"rp-hot"}}'
wait_for 30 eval '[ -e /sys/bus/pci/devices/$HOT ]' && udevadm settle --timeout=30
sleep 3
check "nor does a hot-add" eval '[ "$(state ActiveState)" = inactive ] && is_on $HOT e1000e'

dpkg -r hotplug-agent > /run/dpkg.log 2>&1; rc=$?
check "dpkg -r removes the package" eval '[ $rc -eq 0 ] && [ ! -e /usr/bin/hotplug-agent ] && [ ! -e /lib/systemd/system/$unit ]'
check "and keeps the policies" eval '[ -e $policies/50-nic.toml ]'
touch /etc/hotplug-agent/keep-on-purge
dpkg --purge hotplug-agent > /run/dpkg.log 2>&1; rc=$?
check "dpkg --purge with keep-on-purge keeps /etc/hotplug-agent" eval '[ $rc -eq 0 ] && [ -e $policies/50-nic.toml ]'
rm -f /etc/hotplug-agent/keep-on-purge $policies/60-broken.toml
dpkg -i /var/lib/hp-test/hotplug-agent.deb > /run/dpkg.log 2>&1
check "installed again, it is enabled and started" eval '[ "$(systemctl is-enabled $unit)/$(state ActiveState)" = enabled/active ] && is_on $NIC1 vfio-pci'
check "with its CDI spec in /run/cdi (tmpfiles.d made the directory this boot)" wait_for 10 eval \
    'grep -q "\"name\" : \"nic1-0\"" /run/cdi/hotplug-agent.json'
dpkg --purge hotplug-agent > /run/dpkg.log 2>&1; rc=$?
check "removed, it takes back its CDI spec: no agent keeps it in step any more" eval '[ ! -e /run/cdi/hotplug-agent.json ]'
check "dpkg --purge stops it and removes everything" eval \
    '[ $rc -eq 0 ] && ! pgrep -x hotplug-agent >/dev/null && [ ! -e /etc/hotplug-agent ] && [ ! -e /run/hotplug-agent ] && [ -z "$(find /etc/systemd -name $unit)" ]'
echo "@@DONE"
systemctl poweroff
