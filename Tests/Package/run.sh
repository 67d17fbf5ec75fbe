#!/usr/bin/env bash
# The .deb `make deb` built (lintian already passed on it): its file list is
# Tests/Package/files.txt, its binary needs no Swift toolchain, its control fields and
# maintainer scripts are sound. Installing and removing it is Tests/Kernel/systemd.sh's
# part: that happens in a guest, never on this machine.
#
#   Tests/Package/run.sh path/to/hotplug-agent_VERSION_ARCH.deb
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
deb=${1:?usage: run.sh DEB}
passed=0 failed=0
check() { if eval "$2"; then echo "PASS: $1"; passed=$((passed+1)); else echo "FAIL: $1"; failed=$((failed+1)); fi; }
work=$(mktemp -d /tmp/hotplug-agent-package.XXXXXX)
trap 'rm -rf "$work"' EXIT

dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|; s|/$||' | grep -v '^$' | LC_ALL=C sort > "$work/files"
check "the package holds exactly Tests/Package/files.txt" "diff -u '$here/files.txt' '$work/files'"
dpkg-deb -x "$deb" "$work/root"
dpkg-deb -e "$deb" "$work/DEBIAN"
check "the binary runs and names its version" "'$work/root/usr/bin/hotplug-agent' --version | grep -qx 'hotplug-agent $(dpkg-deb -f "$deb" Version)'"
lab=$work/root/usr/libexec/hotplug-agent/hotplug-agent-lab
check "neither binary needs a Swift toolchain (the runtime is linked in)" \
    "! ldd '$work/root/usr/bin/hotplug-agent' | grep -q swift && ! ldd '$lab' | grep -q swift"
# The daemon ships no simulated kernel: its type names are in the lab's binary only.
check "the simulator is in the lab, not in the daemon's binary" \
    "grep -q SimulatedKernel '$lab' && ! grep -q SimulatedKernel '$work/root/usr/bin/hotplug-agent'"
check "the installed binary hands simulate to the lab in libexec" \
    "'$work/root/usr/bin/hotplug-agent' simulate --host '$here/../../hosts/seed-000-mi300x.json' --policy-dir '$here/../../rules/examples/seed-000' | grep -q '^16 devices changed driver'"
check "it depends on what dpkg-shlibdeps found (libudev1, libc6)" "dpkg-deb -f '$deb' Depends | grep -q 'libudev1' && dpkg-deb -f '$deb' Depends | grep -q 'libc6'"
check "the unit is Debian 12's place and starts the installed binary" \
    "grep -qx 'ExecStart=/usr/bin/hotplug-agent run' '$work/root/lib/systemd/system/hotplug-agent.service'"
# The unit is for Debian 12's systemd (252), whatever the build host runs: Type=notify with
# the reload command, never Type=notify-reload (253+), which 252 ignores with a warning,
# falling back to Type=simple. systemd-analyze verify is this Debian 12 machine's.
unit=$work/root/lib/systemd/system/hotplug-agent.service
check "the unit is Type=notify with its reload command, as systemd 252 needs" \
    "grep -qx 'Type=notify' '$unit' && grep -qx 'ExecReload=/usr/bin/hotplug-agent reload \$MAINPID' '$unit'"
mkdir -p "$work/verify"
sed "s|/usr/bin/hotplug-agent|$work/root/usr/bin/hotplug-agent|" "$unit" > "$work/verify/hotplug-agent.service"
check "systemd-analyze verify (systemd $(systemctl --version | awk 'NR == 1 { print $2 }')) finds nothing in the unit" \
    "[ -z \"\$(systemd-analyze verify --man=no '$work/verify/hotplug-agent.service' 2>&1)\" ]"
mkdir -p "$work/newer"
printf '#!/bin/sh\necho "systemd 257 (257.9-1)"\n' > "$work/newer/systemctl"
chmod +x "$work/newer/systemctl"
# What make would run, to a file first: grep -q ending the pipe early would kill make with
# SIGPIPE, which pipefail counts as a failure.
PATH="$work/newer:$PATH" make -s -n -C "$here/../.." deb > "$work/make-n.out" 2>/dev/null
check "a build host running systemd 257 still builds the package's unit for 252" \
    "grep -q '^packaging/unit.sh 252 /usr/bin ' '$work/make-n.out'"
# grep reading the unit from a process substitution: in a pipe, its early exit on the match
# could kill unit.sh's sed with SIGPIPE, and pipefail made that a failure now and then.
check "packaging/unit.sh makes Type=notify-reload only from 253 on" \
    "grep -qx 'Type=notify-reload' <('$here/../../packaging/unit.sh' 253 /usr/bin < '$here/../../rules/hotplug-agent.service')"
check "/run/cdi is made by tmpfiles.d (0755, root's), which postinst applies at once" \
    "grep -qx 'd /run/cdi 0755 root root -' '$work/root/usr/lib/tmpfiles.d/hotplug-agent.conf' && grep -q 'systemd-tmpfiles --create hotplug-agent.conf' '$work/DEBIAN/postinst'"
check "the maintainer scripts parse" "sh -n '$work/DEBIAN/postinst' && sh -n '$work/DEBIAN/prerm' && sh -n '$work/DEBIAN/postrm'"
check "no policy is enabled by the package" "[ -z \"\$(ls -A '$work/root/etc/hotplug-agent/policies.d')\" ]"
# Origin records are links since 0.5.0; going back below it, or away, prerm makes each the
# file it was (Tests/Package/downgrade.sh, in a private mount namespace).
if [ "$(id -u)" = 0 ]; then
    prerm() { "$here/downgrade.sh" "$work/DEBIAN/prerm" "$1" 2>/dev/null; }
    check "going back below 0.5.0, prerm makes each record link the file it was, byte for byte, root's 0600; \
a link of another user's and a stray temporary one stay, a link to a directory is replaced, not followed" \
        "[ \"\$(prerm downgrade)\" = converted ]"
    check "prerm remove does the same (an older version may be installed next)" "[ \"\$(prerm remove)\" = converted ]"
    check "an upgrade leaves the record links as they are" "[ \"\$(prerm upgrade)\" = kept ]"
    check "an origins directory swapped for a link is not followed" "[ \"\$(prerm elsewhere)\" = untouched ]"
    check "nor is one that others may write into converted" "[ \"\$(prerm writable)\" = untouched ]"
else
    echo "SKIP: the downgrade of origin records needs root (a private mount namespace)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
