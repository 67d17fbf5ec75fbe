import Glibc
@testable import HotplugAgent
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
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, byte) in path.utf8.enumerated() { raw[i] = byte } }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
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

private extension Dictionary where Key == String, Value == String {
    var get: (String) -> String? { { self[$0] } }
}
