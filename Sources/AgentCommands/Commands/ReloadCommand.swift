import HotplugAgent
import HostInterface
import ArgumentParser
import Glibc

/// `systemctl reload` on systemd before 253 (no Type=notify-reload): sends SIGHUP to the
/// daemon and returns once the daemon has recorded that reload's outcome, so the new
/// policies are in force when it returns (exit 0), or were refused and the old ones kept
/// (exit 1).
struct ReloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload", abstract: "Reload a running daemon's policies and wait until they are in force.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The daemon's process ID (systemd's $MAINPID).")
    var pid: Int32

    @Option(
        help: ArgumentHelp(
            "The daemon's state directory (default: the one its command line names, else /run/hotplug-agent "
                + "under the root).", valueName: "DIR"))
    var stateDir: String?

    @Option(help: "How many seconds to wait for the daemon.")
    var timeout: Int = 60

    func run() throws {
        let directory =
            stateDir.map(absolutePath) ?? Self.stateDirectory(ofDaemon: pid)
            ?? HostPaths(root: global.root).stateDirectory
        let record = directory + "/reloaded"
        func generation() -> (Int, String)? {
            guard let text = try? readTextFile(record) else { return nil }
            let fields = firstLine(text).split(separator: " ")
            guard fields.count == 2, let number = Int(fields[0]) else { return nil }
            return (number, String(fields[1]))
        }
        let before = generation()?.0 ?? 0
        guard pid > 1, kill(pid, SIGHUP) == 0 else {
            LineLogHandler.error("hotplug-agent reload: cannot signal process \(pid): \(Errno.current)")
            throw ExitCode(1)
        }
        let deadline = ContinuousClock.now + .seconds(timeout)
        while ContinuousClock.now < deadline {
            if let (number, outcome) = generation(), number > before {
                guard outcome == "ok" else {
                    LineLogHandler.error(
                        "hotplug-agent reload: the policies did not load; the previous ones stay in force (see the log)"
                    )
                    throw ExitCode(1)
                }
                return
            }
            sleep(for: .milliseconds(50))
        }
        LineLogHandler.error(
            "hotplug-agent reload: no answer from process \(pid) within \(timeout) s (no new record in \(record))")
        throw ExitCode(1)
    }

    /// The state directory the daemon `pid` was started with, from its command line
    /// (`/proc/PID/cmdline`: `--state-dir`, else `--root`'s default), relative paths taken
    /// from its working directory; nil when it cannot be read or names neither.
    static func stateDirectory(ofDaemon pid: Int32) -> String? {
        let fd = open("/proc/\(pid)/cmdline", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard let bytes = try? readAll(from: fd, limit: 1 << 20),
            let cwd = try? readSymbolicLink("/proc/\(pid)/cwd")
        else { return nil }
        let arguments = bytes.split(separator: 0, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        return stateDirectory(arguments: arguments, workingDirectory: cwd)
    }

    /// `stateDirectory(ofDaemon:)` from the arguments themselves.
    static func stateDirectory(arguments: [String], workingDirectory cwd: String) -> String? {
        func value(_ option: String) -> String? {
            for (index, argument) in arguments.enumerated() {
                if argument == option, index + 1 < arguments.count { return arguments[index + 1] }
                if argument.hasPrefix(option + "=") { return String(argument.dropFirst(option.count + 1)) }
            }
            return nil
        }
        func absolute(_ path: String) -> String {
            path.hasPrefix("/") ? path : (cwd == "/" ? "" : cwd) + "/" + path
        }
        if let directory = value("--state-dir"), !directory.isEmpty { return absolute(directory) }
        if let root = value("--root"), !root.isEmpty { return HostPaths(root: absolute(root)).stateDirectory }
        return nil
    }
}
