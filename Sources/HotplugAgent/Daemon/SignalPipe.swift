import Glibc
import HostInterface

/// The self-pipe trick: the handler writes the signal number to a pipe that poll() watches,
/// so signals are handled in the loop, between actions, never inside one.
package final class SignalPipe: Sendable {
    package let readFD: Int32

    private let writeFD: Int32

    /// With `installHandlers` false nothing is installed and only `send` writes (tests).
    package init(signals: [Int32], installHandlers: Bool = true) {
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0, "pipe: \(Errno.current)")
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        readFD = fds[0]
        writeFD = fds[1]
        guard installHandlers else { return }
        signalWriteFD = fds[1]
        for signal in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = Glibc.write(signalWriteFD, &byte, 1)
            }
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            sigaction(signal, &action, nil)
        }
    }

    /// Delivers `signal` as if the process had received it.
    package func send(_ signal: Int32) {
        var byte = UInt8(truncatingIfNeeded: signal)
        _ = Glibc.write(writeFD, &byte, 1)
    }

    /// The signals that arrived since the last call.
    package func take() -> [Int32] {
        var bytes = [UInt8](repeating: 0, count: 64)
        let count = bytes.withUnsafeMutableBytes { Glibc.read(readFD, $0.baseAddress, $0.count) }
        return count > 0 ? bytes[..<count].map { Int32($0) } : []
    }
}

/// Written only before the handlers are installed; read by them.
nonisolated(unsafe) private var signalWriteFD: Int32 = -1
