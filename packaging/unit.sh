#!/bin/sh
# The systemd unit for one systemd version, from rules/hotplug-agent.service on stdin:
# ExecStart and ExecReload point at BINDIR; from systemd 253 on, Type=notify-reload (the
# manager sends SIGHUP itself and waits for READY=1) replaces Type=notify with the reload
# command. The version is the target's, never guessed from the build host: `make install`
# asks the running systemd, `make deb` names the Debian release's (Debian 12: 252).
#
#   packaging/unit.sh SYSTEMD_VERSION BINDIR < rules/hotplug-agent.service > hotplug-agent.service
set -eu
version=${1:?usage: unit.sh SYSTEMD_VERSION BINDIR}
bindir=${2:?usage: unit.sh SYSTEMD_VERSION BINDIR}
case $version in *[!0-9]*|'') echo "unit.sh: '$version' is not a systemd version" >&2; exit 2 ;; esac
if [ "$version" -ge 253 ]; then
    sed "s|/usr/bin/hotplug-agent|$bindir/hotplug-agent|; s/^Type=notify\$/Type=notify-reload/; /^ExecReload=/d"
else
    sed "s|/usr/bin/hotplug-agent|$bindir/hotplug-agent|"
fi
