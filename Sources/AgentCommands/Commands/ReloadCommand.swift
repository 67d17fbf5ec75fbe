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
            "The daemon's state directory (default /run/hotplug-agent under the root).", valueName: "DIR"))
    var stateDir: String?

    @Option(help: "How many seconds to wait for the daemon.")
    var timeout: Int = 60

    func run() throws {
        let record = (stateDir.map(absolutePath) ?? HostPaths(root: global.root).stateDirectory) + "/reloaded"
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
        LineLogHandler.error("hotplug-agent reload: no answer from process \(pid) within \(timeout) s")
        throw ExitCode(1)
    }
}
