import HostInterface
import ArgumentParser
import Glibc

/// The simulated kernel and the benchmarks live in a second executable, `hotplug-agent-lab`,
/// so that the daemon neither ships nor maps them. Both executables parse the same commands;
/// the lab's `main` fills in these entry points before parsing. In `hotplug-agent` they stay
/// empty, and a command that needs one (`simulate`, `bench`, any `--host FILE`) hands the
/// whole command line over to the lab, unchanged, by `execv`.
package enum Lab {
    /// A simulated host built from a host description file, read through `io` beneath `paths`.
    package struct Host {
        package let description: HostDescription
        package let io: any KernelIO
        package let paths: HostPaths

        package init(description: HostDescription, io: any KernelIO, paths: HostPaths) {
            self.description = description
            self.io = io
            self.paths = paths
        }
    }

    // Set once by the lab's `main`, before any thread starts; read-only afterwards.
    nonisolated(unsafe) package static var loadHost: ((String) throws -> Host)?
    nonisolated(unsafe) package static var simulate: ((SimulateCommand) throws -> Void)?
    nonisolated(unsafe) package static var bench: ((BenchCommand) throws -> Void)?

    /// The simulated host in `file`, or, in `hotplug-agent`, the lab in this process's place.
    static func host(_ file: String) throws -> Host {
        guard let loadHost else { handOver() }
        return try loadHost(file)
    }

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
        LineLogHandler.error("hotplug-agent: this command needs hotplug-agent-lab (the simulator and the benchmarks), "
            + "which is not installed: looked for \(candidates.joined(separator: " and "))")
        exit(1)
    }
}
