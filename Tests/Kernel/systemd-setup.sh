# Run by the initramfs's /init (busybox sh) when hp.mode=systemd. The root
# becomes an overlay: the host's userland (9p, read-only) below, the guest's disk (/dev/vda,
# ext4, kept between the test's boots) above. Then systemd runs as PID 1 with the target
# hp-test.target, which starts the scenarios (systemd-guest.sh) once multi-user.target is up.
arg() { sed -n "s/.*\<$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
fatal() { echo "@@FATAL $*"; poweroff -f; }
echo "@@UP (initramfs)"
mkdir -p /rw /newroot
mount -t ext4 /dev/vda /rw || fatal "cannot mount the guest's disk"
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot || fatal "cannot mount the overlay root"
release=$(uname -r)
mkdir -p "/newroot/lib/modules/$release"
mount --bind "/kmods/lib/modules/$release" "/newroot/lib/modules/$release"

if [ ! -e /rw/prepared ]; then
    test=/newroot/var/lib/hp-test
    mkdir -p $test
    cp "/host$(arg hp.deb)" $test/hotplug-agent.deb
    cp "/host$(arg hp.script)" $test/scenarios.sh
    cp "$(dirname "/host$(arg hp.script)")/guest-lib.sh" $test/guest-lib.sh
    # This machine's own services stay off; the guest has no fstab, no getty, no
    # policy-rc.d (which blocks starting services on a build machine).
    rm -rf /newroot/etc/systemd/system/*.wants /newroot/usr/sbin/policy-rc.d
    # A build machine may be a container: systemd would take the guest for one too
    # (and read its arguments from its own argv instead of the kernel's command line).
    rm -f /newroot/.dockerenv /newroot/run/.containerenv
    : > /newroot/etc/fstab
    ln -sf /dev/null /newroot/etc/systemd/system/getty.target
    ln -sf /dev/null /newroot/etc/systemd/system/serial-getty@ttyS0.service
    ln -sf /dev/null /newroot/etc/systemd/system/systemd-timesyncd.service
    cat > /newroot/etc/systemd/system/hp-test.target <<'UNIT'
[Unit]
Description=hotplug-agent scenarios under systemd
Requires=multi-user.target
Wants=hp-test.service
After=multi-user.target
AllowIsolate=yes
UNIT
    cat > /newroot/etc/systemd/system/hp-test.service <<'UNIT'
[Unit]
Description=hotplug-agent scenarios
After=multi-user.target

[Service]
ExecStart=/bin/bash /var/lib/hp-test/scenarios.sh
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
UNIT
    touch /rw/prepared
fi

# The host's temporary files are not the guest's (systemd-tmpfiles would walk them).
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
mount -t tmpfs -o mode=1777 tmpfs /newroot/var/tmp
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot /lib/systemd/systemd
