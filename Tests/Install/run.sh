#!/usr/bin/env bash
# make install lays the files out under DESTDIR; the unit passes systemd-analyze verify;
# make uninstall removes what install laid out. Uses the debug build CI already has.
set -u
cd "$(dirname "$0")/../.."
destdir=$(mktemp -d)
trap 'rm -rf "$destdir"' EXIT
passed=0 failed=0
check() { if eval "$2"; then echo "PASS: $1"; passed=$((passed+1)); else echo "FAIL: $1"; failed=$((failed+1)); fi; }

make -s install DESTDIR="$destdir" PREFIX=/usr CONFIG=debug >/tmp/hotplug-agent-install.log 2>&1
check "make install succeeds" "[ $? -eq 0 ]"
for file in usr/bin/hotplug-agent usr/libexec/hotplug-agent/hotplug-agent-lab usr/lib/systemd/system/hotplug-agent.service \
            usr/lib/tmpfiles.d/hotplug-agent.conf \
            usr/share/man/man8/hotplug-agent.8 usr/share/bash-completion/completions/hotplug-agent \
            usr/share/zsh/site-functions/_hotplug-agent usr/share/fish/vendor_completions.d/hotplug-agent.fish \
            usr/share/doc/hotplug-agent/examples/seed-000/50-mi300x.toml usr/share/doc/hotplug-agent/README.md; do
    check "installed $file" "[ -s '$destdir/$file' ]"
done
check "policies.d exists and holds no enabled policy" "[ -d '$destdir/etc/hotplug-agent/policies.d' ] && [ -z \"\$(ls -A '$destdir/etc/hotplug-agent/policies.d')\" ]"
check "the installed binary runs" "'$destdir/usr/bin/hotplug-agent' --help | grep -q 'boot-config'"
check "the installed binary hands simulate to the installed lab" \
    "'$destdir/usr/bin/hotplug-agent' simulate --host hosts/seed-000-mi300x.json --policy-dir rules/examples/seed-000 | grep -q '^16 devices changed driver'"
check "the man page documents the commands" "grep -q 'boot-config' '$destdir/usr/share/man/man8/hotplug-agent.8'"
check "bash completion knows the commands" "grep -q 'vm-args' '$destdir/usr/share/bash-completion/completions/hotplug-agent'"
check "the unit starts the installed binary" "grep -q '^ExecStart=/usr/bin/hotplug-agent run$' '$destdir/usr/lib/systemd/system/hotplug-agent.service'"
# The agent starts with the system (WantedBy=) and coldplugs itself: no udev rule that
# would start it despite systemctl disable, nor a device unit per PCI function.
check "no udev rule starts it behind systemctl disable's back" "[ ! -e '$destdir/usr/lib/udev/rules.d/70-hotplug-agent.rules' ] && grep -q '^WantedBy=multi-user.target$' '$destdir/usr/lib/systemd/system/hotplug-agent.service'"
if command -v systemd-analyze >/dev/null; then
    # The installed unit, pointed at the binary under DESTDIR, as systemd would load it.
    sed "s|^\(Exec[A-Za-z]*\)=/usr/bin/|\1=$destdir/usr/bin/|" "$destdir/usr/lib/systemd/system/hotplug-agent.service" > "$destdir/hotplug-agent.service"
    out=$(systemd-analyze verify --man=no "$destdir/hotplug-agent.service" 2>&1)
    echo "$out" | grep -i "hotplug-agent" || true
    check "systemd-analyze verify accepts the unit" "! echo \"\$out\" | grep -qi 'hotplug-agent'"
    rm -f "$destdir/hotplug-agent.service"
fi

make -s uninstall DESTDIR="$destdir" PREFIX=/usr >/dev/null 2>&1
check "make uninstall succeeds" "[ $? -eq 0 ]"
check "uninstall leaves no file behind" "[ -z \"\$(find '$destdir' -type f)\" ]"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
