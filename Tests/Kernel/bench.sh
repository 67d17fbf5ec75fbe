#!/usr/bin/env bash
# make bench-kernel: the agent against the bare writes on a real kernel, in the machine of
# machine.sh (Debian's kernel under QEMU; TCG times are compared only with each other).
# The guest (Tests/Kernel/bench-guest.sh) times, alternately, five runs each and prints
# medians and ratios:
#   - claims: run --once against a shell script of the same writes (2 e1000e functions to
#     vfio-pci and 2 NVMe VFs made and claimed, nodes owned), and the agent's system calls
#     per claim (strace -c, futexes left out);
#   - hot-add (QMP device_add) to node owned: the daemon against a udev RUN+= script;
#   - 64 NVMe VFs made and claimed: run --once against the script (three runs each).
# Not part of make test.
#
#   Tests/Kernel/bench.sh 6.12|6.1 path/to/hotplug-agent
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
flavour=${1:?usage: bench.sh 6.12|6.1 BINARY}
binary=$(realpath "${2:?usage: bench.sh 6.12|6.1 BINARY}")
. "$here/machine.sh"

kernel_fetch
machine_prepare 9p 9pnet_virtio virtio_pci
# A second NVMe controller with 64 VFs (each needs two flexible queues and an interrupt).
truncate -s 64M "$work/nvme64.img"
machine+=(
    -device pcie-root-port,id=rp-nvme64,chassis=3,slot=3,addr=0x7
    -device nvme-subsys,id=nvsub64,nqn=hotplug-agent-bench
    -device "nvme,id=nvme64,bus=rp-nvme64,serial=hpa0064,subsys=nvsub64,sriov_max_vfs=64,sriov_vq_flexible=128,sriov_vi_flexible=64,max_ioqpairs=130,msix_qsize=66"
    -drive "if=none,id=nvmedisk64,file=$work/nvme64.img,format=raw"
    -device nvme-ns,drive=nvmedisk64,bus=nvme64,nsid=1
)
started=$(date +%s)
echo "real-kernel bench: Debian $package ($version) under QEMU"
machine_boot 1800 hp.bin="$binary" hp.script="$here/bench-guest.sh" hp.holder=/bin/true hp.kernel="$flavour"
grep '^INFO' "$work/results" | sed 's/^INFO //'
machine_summary "real-kernel bench $flavour" $(( $(date +%s) - started ))
