import ArgumentParser
import Glibc
import HostInterface
import HotplugAgent

/// Where `simulate`, `bench` and `--host FILE` are served. The simulated kernel and the
/// benchmarks live in a second executable, `hotplug-agent-lab`, so that the daemon neither
/// ships nor maps them. Both executables parse the same commands, and each names its
/// laboratory in its root command's type: `hotplug-agent`'s is `LabElsewhere`, which hands
/// the whole command line over to the lab, unchanged; the lab's is the simulator itself.
package protocol Laboratory {
    /// The simulated host built from the host description in `file`.
    static func host(_ file: String) throws -> SimulatedHost
    static func simulate(_ command: SimulateCommand<Self>) throws
    static func bench(_ command: BenchCommand<Self>) throws
}

/// A simulated host built from a host description file, read through `io` beneath `paths`.
package struct SimulatedHost {
    package let description: HostDescription
    package let io: any KernelIO
    package let paths: HostPaths

    package init(description: HostDescription, io: any KernelIO, paths: HostPaths) {
        self.description = description
        self.io = io
        self.paths = paths
    }
}

/// `hotplug-agent`'s laboratory: the lab in this process's place, by `execv`.
package enum LabElsewhere: Laboratory {
    package static func host(_ file: String) throws -> SimulatedHost { handOver() }
    package static func simulate(_ command: SimulateCommand<Self>) throws { handOver() }
    package static func bench(_ command: BenchCommand<Self>) throws { handOver() }

    /// Where the lab is installed beside this executable: next to it (the build directory,
    /// `/usr/local/bin`), or in `../libexec/hotplug-agent/` (the package's layout).
    static func candidates(besideExecutable executable: String) -> [String] {
        let directory = executable.lastIndex(of: "/").map { String(executable[..<$0]) } ?? "."
        return ["\(directory)/hotplug-agent-lab", "\(directory)/../libexec/hotplug-agent/hotplug-agent-lab"]
    }

    /// Replaces this process with the lab, given this process's arguments; exits 1 saying
    /// where it looked when there is none.
    static func handOver() -> Never {
        let executable = (try? readSymbolicLink("/proc/self/exe")) ?? CommandLine.arguments[0]
        let candidates = candidates(besideExecutable: executable)
        let argv = CommandLine.arguments.map { strdup($0) } + [nil]
        for path in candidates where access(path, X_OK) == 0 {
            execv(path, argv)
            LineLogHandler.error("hotplug-agent: cannot run \(path): \(Errno.current)")
            exit(1)
        }
        LineLogHandler.error("hotplug-agent: this command needs hotplug-agent-lab (the simulator and the "
            + "benchmarks), which is not installed: looked for \(candidates.joined(separator: " and "))")
        exit(1)
    }
}
