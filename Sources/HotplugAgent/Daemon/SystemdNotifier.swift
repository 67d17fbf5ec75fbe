import HostInterface
import Glibc

/// sd_notify without libsystemd: one datagram per message to `$NOTIFY_SOCKET` (a path, or an
/// abstract name starting with `@`). Does nothing when systemd did not ask for notifications.
package struct SystemdNotifier: Sendable {
    package let socketPath: String?
    /// Half of `$WATCHDOG_USEC`, when the unit sets `WatchdogSec` for this process.
    package let watchdogInterval: Duration?

    package init(environment: (String) -> String? = getenvString) {
        socketPath = environment("NOTIFY_SOCKET").flatMap { $0.isEmpty ? nil : $0 }
        let forUs = environment("WATCHDOG_PID").map { Int32($0) == getpid() } ?? true
        if forUs, let text = environment("WATCHDOG_USEC"), let usec = Int64(text), usec > 0 {
            watchdogInterval = .microseconds(usec / 2)
        } else {
            watchdogInterval = nil
        }
    }

    /// Sends `READY=1`, `STOPPING=1`, `WATCHDOG=1`, `STATUS=…`; errors are ignored, as sd_notify does.
    @discardableResult
    package func send(_ message: String) -> Bool {
        guard let socketPath else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }  // abstract namespace
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count)
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bytes.withUnsafeBytes {
                    sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), socketAddress, length)
                }
            }
        }
        return sent == bytes.count
    }
}
