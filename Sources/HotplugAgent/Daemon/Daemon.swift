import Glibc
import Logging
import Policy

/// The long-running loop: sleeps in poll() until udev or a signal has something, so an
/// idle daemon costs nothing. SIGHUP reloads the policies; SIGTERM and SIGINT end it.
struct Daemon {
    let agent: Agent
    let monitor: UdevMonitor
    let log: Logger
    /// Loads the policies again; nil (after logging why) keeps the ones running.
    let reload: () -> PolicySet?

    func run(signals: SignalPipe) -> Int32 {
        agent.reconcileAll()
        agent.handle(monitor.drain())
        log.info("coldplug done; waiting for events")
        var fds = [pollfd(fd: monitor.fileDescriptor, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: signals.readFD, events: Int16(POLLIN), revents: 0)]
        while true {
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 {
                if Errno.current == .EINTR { continue }
                log.critical("poll: \(Errno.current)")
                return 1
            }
            if fds[1].revents != 0 {
                for signal in signals.take() {
                    switch signal {
                    case SIGHUP:
                        log.notice("SIGHUP: reloading policies")
                        if let policies = reload() {
                            agent.planner = Planner(policies: policies)
                            agent.reconcileAll()
                        }
                    default:
                        log.notice("signal \(signal): exiting")
                        return 0
                    }
                }
            }
            if fds[0].revents != 0 { agent.handle(monitor.drain()) }
        }
    }
}

/// The self-pipe trick: the handler writes the signal number to a pipe that poll() watches,
/// so signals are handled in the loop, between actions, never inside one.
final class SignalPipe: Sendable {
    let readFD: Int32

    init(signals: [Int32]) {
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0, "pipe: \(Errno.current)")
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        readFD = fds[0]
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

    /// The signals that arrived since the last call.
    func take() -> [Int32] {
        var bytes = [UInt8](repeating: 0, count: 64)
        let count = bytes.withUnsafeMutableBytes { Glibc.read(readFD, $0.baseAddress, $0.count) }
        return count > 0 ? bytes[..<count].map { Int32($0) } : []
    }
}

/// Written only before the handlers are installed; read by them.
nonisolated(unsafe) private var signalWriteFD: Int32 = -1
