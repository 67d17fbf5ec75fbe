#!/usr/bin/env bash
# The package's prerm turning origin records (links since 0.5.0) back into the files the
# versions before read, in a private mount namespace whose /run is a fresh tmpfs: nothing
# of this machine's /run is touched, and no systemd is seen (no service is stopped).
# Prints one word per scenario, as Tests/Package/run.sh checks them. Needs root.
#
#   Tests/Package/downgrade.sh PRERM SCENARIO
set -euo pipefail
prerm=${1:?usage: downgrade.sh PRERM SCENARIO}
scenario=${2:?usage: downgrade.sh PRERM SCENARIO}
exec unshare --mount bash -euo pipefail -c '
prerm=$1 scenario=$2
mount -t tmpfs tmpfs /run
[ "$(stat -f -c %T /run)" = tmpfs ] && [ ! -e /run/systemd ]
record() { python3 -c "import os, sys; os.symlink(sys.argv[1].encode(), sys.argv[2])" "$1" "$2"; }
canonical=$(printf "driver=mlx5_core\noverride=\nmoved-to=vfio-pci\n.")
canonical=${canonical%.}
mkdir -p -m 700 /run/hotplug-agent/origins /run/victim
cd /run/hotplug-agent/origins
case $scenario in
downgrade|remove)
    record "$canonical" 0000:13:00.0
    record "driver=ice${canonical#driver=mlx5_core}" 0000:14:00.0
    chown -h 1000:1000 0000:14:00.0
    record "moved-to=vfio-pci" 0000:15:00.0
    record "$canonical" .0000:12:00.0.stray
    record /run/victim 0000:16:00.0
    printf "driver=amdgpu\noverride=\nmoved-to=vfio-pci\n" > 0000:0b:00.0
    if [ "$scenario" = remove ]; then sh "$prerm" remove; else sh "$prerm" upgrade 0.4.0; fi
    [ -f 0000:13:00.0 ] && [ ! -L 0000:13:00.0 ] && [ "$(stat -c %a:%u 0000:13:00.0)" = 600:0 ] || exit 1
    printf "%s" "$canonical" | cmp -s - 0000:13:00.0 || exit 1
    [ -L 0000:14:00.0 ] || exit 1                          # another user made it: left alone
    printf "moved-to=vfio-pci" | cmp -s - 0000:15:00.0 || exit 1   # byte for byte, no newline added
    [ -L .0000:12:00.0.stray ] && [ -z "$(ls -A /run/victim)" ] || exit 1
    [ -z "$(ls -A | grep downgrade)" ] || exit 1
    printf "driver=amdgpu\noverride=\nmoved-to=vfio-pci\n" | cmp -s - 0000:0b:00.0 || exit 1
    echo converted ;;
upgrade)
    record "$canonical" 0000:13:00.0
    sh "$prerm" upgrade 0.6.0
    [ -L 0000:13:00.0 ] && echo kept ;;
elsewhere|writable)
    cd /run
    record "$canonical" /run/victim/0000:13:00.0
    if [ "$scenario" = elsewhere ]; then
        rmdir /run/hotplug-agent/origins && ln -s /run/victim /run/hotplug-agent/origins
    else
        mv /run/victim/0000:13:00.0 /run/hotplug-agent/origins/ && chmod 770 /run/hotplug-agent/origins
    fi
    sh "$prerm" upgrade 0.4.0
    [ -L /run/victim/0000:13:00.0 ] || [ -L /run/hotplug-agent/origins/0000:13:00.0 ] || exit 1
    [ -z "$(ls -A /run/victim /run/hotplug-agent/origins/ | grep downgrade)" ] && echo untouched ;;
esac
' downgrade "$prerm" "$scenario"
