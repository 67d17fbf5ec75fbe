import Foundation
import Glibc
import HostInterface
@testable import AgentCommands
@testable import HotplugAgent
@testable import Simulation
import Synchronization
import Policy
import Testing

/// A datagram socket standing in for systemd's notification socket.
final class NotifySocket {
    let path: String
    let fd: Int32

    init() throws {
        path = "/tmp/hotplug-agent-notify-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else { throw Errno.current }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// The next message, waiting up to `timeout`.
    func receive(timeout: Duration = .seconds(5)) -> String? {
        var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&ready, 1, timeout.pollMilliseconds) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
    }
}

struct NotifyTests {
    @Test func messagesReachTheSocketSystemdNames() throws {
        let socket = try NotifySocket()
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "3000000"].get)
        #expect(notifier.watchdogInterval == .milliseconds(1500))
        #expect(notifier.send("READY=1"))
        #expect(socket.receive() == "READY=1")
        #expect(!SystemdNotifier(environment: { _ in nil }).send("READY=1"))
        let otherProcess = SystemdNotifier(environment: ["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"].get)
        #expect(otherProcess.watchdogInterval == nil)
    }

    @Test func theDaemonIsReadyAfterColdplugPingsTheWatchdogAndSaysItStops() throws {
        let socket = try NotifySocket()
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        var daemon = Daemon(agent: host.agent, monitor: host.kernel, log: host.agent.log) { nil }
        daemon.notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "200000"].get)
        let signals = SignalPipe(signals: [], installHandlers: false)
        startThread { [daemon] in _ = daemon.run(signals: signals) }
        var early: [String] = []
        while let message = socket.receive(), !message.hasPrefix("READY=1\n") { early.append(message) }
        #expect(early.allSatisfy { $0 == "WATCHDOG=1" })
        // READY comes once coldplug has settled.
        #expect(host.addresses { $0.driver == "vfio-pci" }.count == 16)
        #expect(socket.receive(timeout: .seconds(2)) == "WATCHDOG=1")
        signals.send(SIGTERM)
        var messages: [String] = []
        while let message = socket.receive(timeout: .seconds(2)), message != "STOPPING=1" { messages.append(message) }
        #expect(messages.allSatisfy { $0 == "WATCHDOG=1" })
    }
}

/// The reload handshake: RELOADING=1 with MONOTONIC_USEC, READY=1 once the new policies
/// are in force, and the outcome recorded for `hotplug-agent reload` (systemd before 253).
struct ReloadHandshakeTests {
    @Test func sighupSaysReloadingThenReadyOnceTheNewPoliciesAreInForce() throws {
        let socket = try NotifySocket()
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        let tree = try FakeSysfs()
        let outcomes = Mutex<[PolicySet?]>([PolicySet([]), nil])
        var daemon = Daemon(agent: host.agent, monitor: host.kernel, log: host.agent.log) {
            outcomes.withLock { $0.removeFirst() }
        }
        daemon.notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.path].get)
        daemon.reloadRecord = (tree.path("/state/reloaded"), "/")
        let signals = SignalPipe(signals: [], installHandlers: false)
        startThread { [daemon] in _ = daemon.run(signals: signals) }
        while let message = socket.receive(), !message.hasPrefix("READY=1") {}
        let before = monotonicMicroseconds()
        signals.send(SIGHUP)
        let reloading = try #require(socket.receive())
        let lines = reloading.split(separator: "\n")
        #expect(lines.first == "RELOADING=1")
        let stamp = try #require(lines.dropFirst().first.flatMap { UInt64($0.dropFirst("MONOTONIC_USEC=".count)) })
        #expect(
            lines.dropFirst().first?.hasPrefix("MONOTONIC_USEC=") == true && stamp >= before
                && stamp <= monotonicMicroseconds())
        #expect(socket.receive()?.hasPrefix("READY=1") == true)
        // READY=1 came once the new (empty) policies were in force: the planner has them,
        // and every device they no longer claim is back on its own driver already.
        #expect(host.agent.planner.policies.policies.isEmpty)
        #expect(host.addresses { $0.driver == "vfio-pci" }.isEmpty)
        #expect(try String(contentsOfFile: tree.path("/state/reloaded"), encoding: .utf8) == "1 ok\n")
        signals.send(SIGHUP)
        #expect(socket.receive()?.hasPrefix("RELOADING=1") == true)
        #expect(socket.receive()?.hasPrefix("READY=1") == true)
        #expect(try String(contentsOfFile: tree.path("/state/reloaded"), encoding: .utf8) == "2 refused\n")
        signals.send(SIGTERM)
    }
}

private extension Dictionary where Key == String, Value == String {
    var get: (String) -> String? { { self[$0] } }
}

/// On the journal (JOURNAL_STREAM names standard error), every log line starts with its
/// syslog priority, so `journalctl -p err` finds the errors.
struct JournalTests {
    func run(_ arguments: [String], journal: Bool) throws -> String {
        let tree = try FakeSysfs()
        let errorFile = tree.path("/stderr")
        #expect(FileManager.default.createFile(atPath: errorFile, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: errorFile))
        var st = stat()
        stat(errorFile, &st)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binary.path)
        process.arguments = arguments + ["--root", tree.root]
        var environment = ProcessInfo.processInfo.environment
        environment["JOURNAL_STREAM"] = journal ? "\(st.st_dev):\(st.st_ino)" : nil
        process.environment = environment
        process.standardError = handle
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try handle.close()
        return try String(contentsOfFile: errorFile, encoding: .utf8)
    }

    @Test func linesCarryTheirPriorityOnTheJournalAndNotElsewhere() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/p")
        try tree.file("/p/10.toml", "[[policy]]\nname = \"x\"\nmatch.ids = [\"1002:74a\"]\n")
        let failed = try run(["run", "--once", "--policy-dir", tree.path("/p")], journal: true)
        let lines = failed.split(separator: "\n")
        #expect(!lines.isEmpty && lines.allSatisfy { $0.hasPrefix("<3>") }, "\(failed)")
        #expect(lines.contains { $0.hasPrefix("<3>\(tree.path("/p/10.toml")):3: match.ids") })
        try tree.file("/p/10.toml", "[[policy]]\nname = \"x\"\nmatch.ids = [\"1002:74a1\"]\n")
        let info = try run(["run", "--once", "--dry-run", "--policy-dir", tree.path("/p")], journal: true)
        #expect(info.split(separator: "\n").contains { $0.hasPrefix("<6>info: 1 policies loaded") }, "\(info)")
        let plain = try run(["run", "--once", "--dry-run", "--policy-dir", tree.path("/p")], journal: false)
        #expect(plain.split(separator: "\n").contains { $0.hasPrefix("info: 1 policies loaded") }, "\(plain)")
    }
}

/// `hotplug-agent reload PID`, systemd's ExecReload before 253: returns once the daemon has
/// the new policies (0), or has refused them and kept the old ones (1).
struct ReloadCommandTests {
    /// The daemon on `tree` with one policy, run from `directory`, once its signal handlers
    /// are in place (until then a SIGHUP would end it).
    func daemon(_ tree: FakeSysfs, _ arguments: [String], in directory: String? = nil) throws -> Process {
        try tree.mkdir("/p")
        try tree.file("/p/10.toml", "[[policy]]\nname = \"a\"\nmatch.ids = [\"1002:74a1\"]\n")
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: Binary.path)
        daemon.currentDirectoryURL = directory.map { URL(fileURLWithPath: $0) }
        daemon.arguments = ["run", "--policy-dir", tree.path("/p")] + arguments
        daemon.standardError = FileHandle.nullDevice
        try daemon.run()
        usleep(500_000)
        return daemon
    }

    @Test func reloadWaitsForTheDaemonsWord() throws {
        let tree = try FakeSysfs()
        let daemon = try daemon(tree, ["--root", tree.root, "--state-dir", tree.path("/state")])
        defer { daemon.terminate(); daemon.waitUntilExit() }
        let pid = String(daemon.processIdentifier)
        let good = try Binary.run(["reload", pid, "--state-dir", tree.path("/state"), "--timeout", "10"])
        #expect(good.status == 0, "\(good.stderr)")
        #expect(try String(contentsOfFile: tree.path("/state/reloaded"), encoding: .utf8) == "1 ok\n")
        try tree.file("/p/10.toml", "[[policy]]\nname = \"a\"\nmatch.ids = [\"1002:74a\"]\n")
        let bad = try Binary.run(["reload", pid, "--state-dir", tree.path("/state"), "--timeout", "10"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("the policies did not load; the previous ones stay in force"))
        #expect(daemon.isRunning)
    }

    /// The state directory outlives the daemon (the unit preserves it): a new daemon numbers
    /// its reloads on from the record it finds, where it counted from 1 again and `reload`
    /// took its first reload for an old one and waited its whole timeout (found by this
    /// round's attacker: every first `systemctl reload` after a restart failed).
    /// And whatever number it finds: the largest is followed by 0 (it trapped on the first
    /// reload, and, restarted on failure, on every one after: found by the next attacker).
    @Test(arguments: [("5 ok\n", "6 ok\n"), ("\(Int.max) ok\n", "0 ok\n")])
    func theFirstReloadAfterARestartIsAnswered(found: String, then: String) throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/state")
        try tree.file("/state/reloaded", found)
        let daemon = try daemon(tree, ["--root", tree.root, "--state-dir", tree.path("/state")])
        defer { daemon.terminate(); daemon.waitUntilExit() }
        let reload = try Binary.run(
            ["reload", String(daemon.processIdentifier), "--state-dir", tree.path("/state"), "--timeout", "5"])
        #expect(reload.status == 0, "\(reload.stderr)")
        #expect(try String(contentsOfFile: tree.path("/state/reloaded"), encoding: .utf8) == then)
        #expect(daemon.isRunning)
    }

    /// Without `--state-dir`, the daemon's own command line says where it records reloads
    /// (a relative one from its working directory), where reload once waited its whole
    /// timeout on /run/hotplug-agent.
    @Test func reloadFindsTheStateDirectoryTheDaemonWasStartedWith() throws {
        let tree = try FakeSysfs()
        let daemon = try daemon(tree, ["--root", ".", "--state-dir=state"], in: tree.root)
        defer { daemon.terminate(); daemon.waitUntilExit() }
        let started = ContinuousClock.now
        let reload = try Binary.run(["reload", String(daemon.processIdentifier), "--timeout", "10"])
        #expect(reload.status == 0, "\(reload.stderr)")
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(try String(contentsOfFile: tree.path("/state/reloaded"), encoding: .utf8) == "1 ok\n")
    }

    /// The daemon's word is believed as its other records are: a `reloaded` another user
    /// could write (their state directory) is refused at once, never taken for "ok".
    @Test(.enabled(if: runningAsRoot, "chown needs root"))
    func aReloadRecordAnotherUserCouldWriteIsRefused() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/state")
        try tree.file("/state/reloaded", "7 ok\n")
        chown(tree.path("/state"), 1000, 1000)
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sh")
        sleeper.arguments = ["-c", "trap '' HUP; exec sleep 30"]
        try sleeper.run()
        defer { kill(sleeper.processIdentifier, SIGKILL); sleeper.waitUntilExit() }
        let started = ContinuousClock.now
        let reload = try Binary.run(
            ["reload", String(sleeper.processIdentifier), "--state-dir", tree.path("/state"), "--timeout", "10"])
        #expect(reload.status == 1)
        #expect(reload.stderr.contains("is not owned by root"), "\(reload.stderr)")
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    /// Another user's process does not choose where root looks: its command line naming a
    /// state directory is not read, and reload waits on its own default.
    @Test(.enabled(if: runningAsRoot && access("/usr/bin/setpriv", X_OK) == 0, "setpriv, as root"))
    func anotherUsersProcessDoesNotChooseTheStateDirectory() throws {
        let tree = try FakeSysfs()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = [
            "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c", "trap '' HUP; read line", "x", "run",
            "--state-dir", "/tmp/elsewhere"
        ]
        // It waits in `read` on a pipe nobody writes: no child of its own to outlive it.
        let input = Pipe()
        process.standardInput = input
        try process.run()
        defer { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        usleep(200_000)
        let reload = try Binary.run(
            ["reload", "--root", tree.root, String(process.processIdentifier), "--timeout", "1"])
        #expect(reload.status == 1)
        #expect(
            reload.stderr.contains("no new record in \(tree.path("/run/hotplug-agent/reloaded"))"), "\(reload.stderr)")
    }

    @Test func theDaemonsStateDirectoryFromItsArguments() {
        let arguments = ["hotplug-agent", "run", "--root", "tree", "--policy-dir", "/p"]
        // Below the daemon's root, walked from it (a link in the tree stays inside, as the
        // daemon's write resolved it); a directory named outright, from `/`.
        let fromRoot = ReloadCommand.stateDirectory(arguments: arguments, workingDirectory: "/w")
        #expect(fromRoot?.directory == "/w/tree/run/hotplug-agent" && fromRoot?.walkRoot == "/w/tree")
        let named = ReloadCommand.stateDirectory(arguments: arguments + ["--state-dir", "/s"], workingDirectory: "/w")
        #expect(named?.directory == "/s" && named?.walkRoot == "/")
        #expect(ReloadCommand.stateDirectory(arguments: ["hotplug-agent", "run"], workingDirectory: "/w") == nil)
        #expect(ReloadCommand.stateDirectory(arguments: ["x", "--root="], workingDirectory: "/w") == nil)
        // As the daemon's parser reads them: the last one wins, nothing after `--` counts.
        #expect(
            ReloadCommand.stateDirectory(arguments: ["x", "--state-dir", "a", "--state-dir=b"], workingDirectory: "/w")?
                .directory == "/w/b")
        #expect(
            ReloadCommand.stateDirectory(arguments: ["x", "--", "--state-dir", "/s"], workingDirectory: "/w") == nil)
    }
}
