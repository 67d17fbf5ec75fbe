#!/usr/bin/env bash
# The real-kernel test: boots one of Debian's kernels under QEMU (machine.sh) and runs
# Tests/Kernel/guest.sh in it with this build's agent. The host drives hot-add and
# hot-remove through QMP when the guest asks. One line per scenario, then
# "N passed, M failed".
#
#   Tests/Kernel/run.sh 6.12|6.1 path/to/hotplug-agent
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
flavour=${1:?usage: run.sh 6.12|6.1 BINARY}
binary=$(realpath "${2:?usage: run.sh 6.12|6.1 BINARY}")
. "$here/machine.sh"

kernel_fetch
machine_prepare 9p 9pnet_virtio virtio_pci
# A VMM stand-in that holds a VFIO device open (the guest runs the host's userland).
gcc -O2 -Wall -o "$work/vfio-holder" "$here/vfio-holder.c"

started=$(date +%s)
echo "real kernel: Debian $package ($version) under QEMU"
machine_boot 900 hp.bin="$binary" hp.script="$here/guest.sh" hp.holder="$work/vfio-holder" hp.kernel="$flavour"
machine_summary "real kernel $flavour" $(( $(date +%s) - started ))
