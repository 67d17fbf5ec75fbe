#!/usr/bin/env bash
# The unit under a real systemd: the machine of machine.sh boots the host's userland as
# an overlay root (the guest's own disk above it) with systemd as PID 1, installs the
# package (.deb) there and runs Tests/Kernel/systemd-guest.sh: the package enables and
# starts the unit, which reaches READY after coldplug and claims devices inside its
# sandbox; reload, hot-add, the journal's priorities, stop, disable; then a second boot
# of the same disk shows the disabled unit stays off, and the package is removed and
# purged. One line per scenario, then "N passed, M failed".
#
#   Tests/Kernel/systemd.sh 6.12|6.1 path/to/hotplug-agent_VERSION_ARCH.deb
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
flavour=${1:?usage: systemd.sh 6.12|6.1 DEB}
deb=$(realpath "${2:?usage: systemd.sh 6.12|6.1 DEB}")
. "$here/machine.sh"

kernel_fetch
machine_prepare 9p 9pnet_virtio virtio_pci virtio_blk ext4 overlay
# The guest's disk: the overlay's upper layer, kept from the first boot to the second.
truncate -s 1G "$work/state.img"
mkfs.ext4 -q -F "$work/state.img"
machine+=(-drive "if=none,id=state,file=$work/state.img,format=raw" -device virtio-blk-pci,drive=state,addr=0x8)

started=$(date +%s)
echo "systemd in a real kernel: Debian $package ($version) under QEMU"
arguments=(hp.mode=systemd hp.setup="$here/systemd-setup.sh" hp.deb="$deb" hp.script="$here/systemd-guest.sh"
           systemd.unit=hp-test.target systemd.show_status=false)
machine_boot 600 "${arguments[@]}" hp.phase=1
grep -q "@@PHASE 1 done" "$work/console.log" || echo "FAIL the first boot did not finish its scenarios" | tee -a "$work/results"
machine_boot 600 "${arguments[@]}" hp.phase=2
machine_summary "systemd in a real kernel $flavour" $(( $(date +%s) - started ))
