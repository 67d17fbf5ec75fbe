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
        let paths = HostPaths(root: global.root)
        // Walked as the daemon walks it to write there: below its root for the root's own
        // place (a link in the tree resolves inside it), from `/` for a directory named.
        let (directory, walkRoot) =
            stateDir.map { (absolutePath($0), "/") } ?? Self.stateDirectory(ofDaemon: pid)
            ?? (paths.stateDirectory, paths.root)
        let record = directory + "/reloaded"
        // Its word is believed only as the daemon's other records are: through the trusted
        // walk, root's or the unit's dynamic user's, never one another user could write.
        func generation() throws(ExitCode) -> (Int, String)? {
            switch ReloadRecord.read(record, root: walkRoot) {
            case .success(let found): return found
            case .failure(let refusal):
                LineLogHandler.error("hotplug-agent reload: \(record): \(refusal.message)")
                throw ExitCode(1)
            }
        }
        // Any other number than the one there before the signal is the daemon's answer to it:
        // a daemon numbers on from the record it finds, an older one from 1 after a restart.
        let before = try generation()?.0
        guard pid > 1, kill(pid, SIGHUP) == 0 else {
            LineLogHandler.error("hotplug-agent reload: cannot signal process \(pid): \(Errno.current)")
            throw ExitCode(1)
        }
        let deadline = ContinuousClock.now + .seconds(timeout)
        while ContinuousClock.now < deadline {
            if let (number, outcome) = try generation(), number != before {
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
    /// from its working directory; nil when it cannot be read or names neither, or when
    /// the process is not root's nor a systemd dynamic user's (as the daemon runs): another
    /// user's process does not choose where root looks.
    static func stateDirectory(ofDaemon pid: Int32) -> (directory: String, walkRoot: String)? {
        var st = stat()
        guard stat("/proc/\(pid)", &st) == 0, st.st_uid == 0 || TrustedPath.dynamicUsers.contains(st.st_uid) else {
            return nil
        }
        guard let line = try? readTextFile("/proc/\(pid)/cmdline"), let cwd = try? readSymbolicLink("/proc/\(pid)/cwd")
        else { return nil }
        // On the NUL byte, as the kernel wrote them: as characters, an argument beginning
        // with a combining mark would join the one before it.
        let arguments = line.split(byte: 0, omittingEmptySubsequences: false).map(String.init)
        return stateDirectory(arguments: arguments, workingDirectory: cwd)
    }

    /// `stateDirectory(ofDaemon:)` from the arguments themselves, read as the daemon's
    /// parser reads them: the last of a repeated option wins, nothing after `--` is one.
    /// With the root it is walked below: `/` for `--state-dir`, else `--root`'s.
    static func stateDirectory(
        arguments: [String], workingDirectory cwd: String
    ) -> (directory: String, walkRoot: String)? {
        let options = arguments.prefix { $0 != "--" }
        func value(_ option: String) -> String? {
            var found: String?
            for (index, argument) in options.enumerated() {
                if argument == option, index + 1 < options.count { found = options[options.startIndex + index + 1] }
                if argument.hasPrefix(option + "=") { found = String(argument.dropFirst(option.count + 1)) }
            }
            return found
        }
        func absolute(_ path: String) -> String {
            if path.isAbsolutePath { return path }
            if path.isEmpty || path == "." { return cwd }
            return (cwd == "/" ? "" : cwd) + "/" + path
        }
        if let directory = value("--state-dir") { return (absolute(directory), "/") }
        guard let root = value("--root"), !root.isEmpty else { return nil }
        let paths = HostPaths(root: absolute(root))
        return (paths.stateDirectory, paths.root)
    }
}
