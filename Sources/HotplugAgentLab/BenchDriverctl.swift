import Glibc
import HostInterface
import AgentCommands
import HotplugAgent
import Policy
import Simulation

/// driverctl (Debian's package, unpacked by make bench, never installed) claiming seed
/// 000's 16 devices one `set-override` after another, beside the agent's coldplug of them.
extension BenchCommand {
    /// Runs with seed 000 laid out as files in a temporary directory, mounted on /sys in a
    /// private mount namespace of its own: whatever driverctl writes lands in those files,
    /// never in this machine's sysfs (the script stops unless the tree's marker shows on
    /// /sys). The files do not react as a kernel would, so no kernel time is in the figure:
    /// it is what driverctl costs at the least.
    func driverctlAgainstTheAgent(agentColdplug: Double) throws {
        let label = "coldplug, 16 devices, driverctl"
        guard let driverctl, access(driverctl, X_OK) == 0 else {
            figure(label, "not run", "no driverctl given: make bench unpacks Debian's")
            return
        }
        let (_, kernel, targets) = try Self.seed000Host(probe: .zero)
        let root = try temporaryDirectory("hotplug-agent-driverctl")
        defer { _ = Subprocess.removeTree(root) }
        try SysfsTree(paths: HostPaths(root: root)).write(kernel.inspect { $0 })
        // driverctl loads a driver unless /sys/module names it: here it is "loaded".
        for directory in ["/sys/module", "/sys/module/vfio-pci"] { mkdir(root + directory, 0o755) }
        _ = creat(root + "/sys/.hotplug-agent-bench-tree", 0o644)
        let script = """
            set -e
            tree=$1 driverctl=$2; shift 2
            mount --bind "$tree" /sys
            [ -e /sys/.hotplug-agent-bench-tree ] || { echo "the tree is not on /sys: nothing run" >&2; exit 1; }
            # Its last check, that a driver is bound, fails where the files do not bind one
            # (devices without a driver): its writes are done by then.
            for run in 1 2 3 4 5; do
                start=$(date +%s%N)
                for device; do "$driverctl" --nosave set-override "$device" vfio-pci 2>/dev/null || :; done
                echo $(( $(date +%s%N) - start ))
            done
            for device; do
                override=$(cat "/sys/bus/pci/devices/$device/driver_override")
                [ "$override" = vfio-pci ] || { echo "driverctl did not set $device" >&2; exit 1; }
            done
            """
        let result: Subprocess.Result
        do {
            result = try Subprocess.run(
                "/usr/bin/unshare",
                arguments: [
                    "--mount", "--propagation", "private", "/bin/sh", "-c", script,
                    "sh", root + "/sys", driverctl
                ] + targets.map(\.description))
        } catch {
            figure(label, "not run", "cannot start unshare: \(error)")
            return
        }
        let runs = result.output.split(separator: "\n").compactMap { Double($0) }.map { $0 / 1e9 }
        guard result.status == 0, runs.count == 5 else {
            figure(
                label, "not run",
                result.output.split(separator: "\n").last.map(String.init) ?? "exit status \(result.status)")
            return
        }
        let theirs = runs.sorted()[2]
        figure(
            label, "\(fixed(theirs * 1000, 1)) ms wall",
            "median of 5, set-override --nosave on files that do not react (a lower bound); "
                + "the agent \(fixed(agentColdplug * 1000, 2)) ms: \(fixed(agentColdplug / theirs, 3))x; goal < 1x")
    }
}
