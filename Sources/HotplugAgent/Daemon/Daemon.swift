import HostInterface
import Glibc
import Logging
import Policy

/// The long-running loop: sleeps in poll() until udev or a signal has something, so an
/// idle daemon costs nothing. SIGHUP reloads the policies; SIGTERM and SIGINT end it.
package struct Daemon: @unchecked Sendable {  // runs on one thread; handed to it once
    package let agent: Agent
    package let monitor: any PollableEventSource
    package let log: Logger
    /// Loads the policies again; nil (after logging why) keeps the ones running.
    package let reload: () -> PolicySet?
    package var notifier = SystemdNotifier()
    /// How often devices that wait for a VM to let go are looked at again, besides events.
    package var waitRetry: Duration = .seconds(10)
    /// Where each SIGHUP's outcome is recorded (`<generation> ok|refused`), for
    /// `hotplug-agent reload` to wait on.
    /// (The file, and the `--root` it lies below or `/`.)
    package var reloadRecord: (path: String, root: String)?
    /// Changes to the policy directories reload by themselves, after `quietBeforeReload`.
    package var watcher: PolicyWatcher?
    package var quietBeforeReload: Duration = .milliseconds(500)
    /// Rewritten after each change (at most once a second): devices per policy and state,
    /// actions and failures, the last reload.
    package var metrics: MetricsFile?
    /// The CDI specs, brought in line each time the agent is idle after work.
    package var cdi: CDISpecFiles?

    package init(agent: Agent, monitor: any PollableEventSource, log: Logger, reload: @escaping () -> PolicySet?) {
        self.agent = agent
        self.monitor = monitor
        self.log = log
        self.reload = reload
    }

    package func run(signals: SignalPipe) -> Int32 {
        agent.reconcileAll(wait: false, forgettingDeparted: true)
        agent.handle(monitor.drain(), wait: false)
        // Woken when the workers run out of work: what follows work (the CDI specs, READY=1,
        // watching the processes devices wait for) is done then, not at the next timeout.
        let settled = SignalPipe(signals: [], installHandlers: false)
        agent.queue.whenIdle { settled.send(0) }
        defer { agent.queue.whenIdle {} }
        let sources = [monitor.fileDescriptor, signals.readFD, watcher?.fileDescriptor ?? -1, settled.readFD]
        let holders = HolderWatch()
        var pidfdRefused: Errno?, watchedCount = 0
        var reloadDue: ContinuousClock.Instant?
        var metricsDue = metrics != nil, wasBusy = true
        var metricsFailure: String?, cdiFailure: String?, cdiDue = false
        var lastReload: MetricsFile.Reload?
        var nextMetrics = ContinuousClock.now
        var ready = false
        // What READY=1 says, and the outcome a reload leaves for `hotplug-agent reload`.
        var readyStatus = "coldplug done; handling events"
        var reloadOutcome: String?
        var nextWatchdog = notifier.watchdogInterval.map { ContinuousClock.now + $0 }
        var nextWaitRetry = ContinuousClock.now + waitRetry
        var reloads = 0
        // Devices that wait for a VM are looked at again (and the CDI specs after them).
        func lookAgainAtWaiting(_ why: String? = nil) {
            if let why { log.info("\(why); looking again") }
            agent.retryWaiting(wait: false)
            cdiDue = true
        }
        while true {
            // The CDI specs at once when work settles (before READY=1): a device that left
            // VFIO leaves them before a runtime is handed it again.
            if wasBusy || cdiDue, !agent.queue.isBusy, let cdi {
                cdiDue = false
                cdi.update(from: agent, lastFailure: &cdiFailure)
            }
            // The VMs devices wait for: one that exits lets them go (closing sends no uevent).
            if !agent.queue.isBusy, holders.watch(agent.waitedFor) {
                lookAgainAtWaiting("a process a device waits for has exited")
                continue
            }
            // READY=1 once coldplug, or the pass a reload started, has settled (a stuck
            // device does not hold it back): `systemctl reload` returns with devices moved.
            if !ready && !agent.queue.isBusy {
                ready = true
                if let outcome = reloadOutcome, let reloadRecord {
                    try? writeFileAtomically(reloadRecord.path, outcome, fileMode: 0o644, directoryMode: 0o755,
                                             durable: false, root: reloadRecord.root)
                }
                reloadOutcome = nil
                notifier.send("READY=1\nSTATUS=\(readyStatus)")
                log.info("\(readyStatus)")
            }
            // Asleep in the kernel while idle; awake each second while workers are busy,
            // to report devices whose writes do not return, and for the watchdog if asked.
            var timeout: Int32 = agent.queue.isBusy ? 1000 : -1
            // Metrics once the agent is idle after work, at most once a second.
            if agent.queue.isBusy { wasBusy = true } else if wasBusy { wasBusy = false; metricsDue = metrics != nil }
            if metricsDue, ready, !agent.queue.isBusy, ContinuousClock.now >= nextMetrics, let metrics {
                let text = MetricsFile.text(devices: agent.statuses(), actions: agent.reconciler.actions.withLock { $0 },
                                            reload: lastReload)
                // Said once per kind of failure, and once more when it writes again.
                let failure = metrics.write(text).map { "\($0)" }
                if let failure, failure != metricsFailure { log.warning("metrics not written: \(failure)") }
                if failure == nil, metricsFailure != nil { log.notice("metrics written again") }
                metricsFailure = failure
                metricsDue = false
                nextMetrics = ContinuousClock.now + .seconds(1)
            }
            for due in [nextWatchdog, agent.hasWaiting ? nextWaitRetry : nil, reloadDue, metricsDue ? nextMetrics : nil].compactMap({ $0 }) {
                let left = (due - ContinuousClock.now).pollMilliseconds
                timeout = timeout < 0 ? left : min(timeout, left)
            }
            if let refused = holders.refused, refused != pidfdRefused {
                let why = "pidfd_open: \(refused)"
                log.warning("cannot watch the processes devices wait for (\(why)); looking every \(waitRetry)")
                pidfdRefused = refused
            }
            var fds = (sources + holders.descriptors).map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if holders.descriptors.count != watchedCount {
                watchedCount = holders.descriptors.count
                log.debug("watching \(watchedCount) processes devices wait for")
            }
            let polled = poll(&fds, nfds_t(fds.count), timeout)
            if fds[3].revents != 0 { _ = settled.take() }
            if polled > 0, holders.takeExited(Array(fds[sources.count...])) {
                lookAgainAtWaiting("a process a device waits for has exited")
            }
            agent.queue.checkForStuck()
            if ContinuousClock.now >= nextWaitRetry {
                nextWaitRetry = ContinuousClock.now + waitRetry
                if agent.hasWaiting { lookAgainAtWaiting() }
            }
            if let due = nextWatchdog, ContinuousClock.now >= due, let interval = notifier.watchdogInterval {
                notifier.send("WATCHDOG=1")
                nextWatchdog = ContinuousClock.now + interval
            }
            if polled < 0 {
                if Errno.current == .EINTR { continue }
                log.critical("poll: \(Errno.current)")
                return 1
            }
            if fds[2].revents != 0, watcher?.drain() == true {
                // Quiet for a moment first: an editor's or a ConfigMap's burst is one reload.
                reloadDue = ContinuousClock.now + quietBeforeReload
            }
            var signalled = fds[1].revents != 0 ? signals.take() : []
            if let due = reloadDue, ContinuousClock.now >= due {
                reloadDue = nil
                log.notice("the policy directories changed")
                signalled.append(SIGHUP)
            }
            for signal in signalled {
                switch signal {
                case SIGHUP:
                    log.notice("reloading policies")
                    // Type=notify-reload: RELOADING=1 with the time; READY=1 (at the top of
                    // the loop) once the new policies are in force on every device that
                    // can move now, or at once when they were refused and the old ones kept.
                    notifier.send("RELOADING=1\nMONOTONIC_USEC=\(monotonicMicroseconds())")
                    let policies = reload()
                    if let policies {
                        agent.planner = Planner(policies: policies)
                        agent.reconcileAll(wait: false)
                        cdiDue = true
                    }
                    reloads += 1
                    lastReload = MetricsFile.Reload(time: unixTime(), succeeded: policies != nil)
                    metricsDue = metrics != nil
                    reloadOutcome = "\(reloads) \(policies == nil ? "refused" : "ok")\n"
                    readyStatus = policies == nil ? "policies refused, the old ones kept; handling events"
                                                  : "policies reloaded; handling events"
                    ready = false
                default:
                    log.notice("signal \(signal): finishing the steps in progress, then exiting")
                    notifier.send("STOPPING=1")
                    if !agent.queue.stop(grace: .seconds(10)) {
                        log.warning("leaving while a write has not returned; the kernel still holds it")
                    }
                    return 0
                }
            }
            if fds[0].revents != 0 {
                let batch = monitor.drain()
                // Whatever moves a device (a removal asks for no reconcile) is looked at for
                // the CDI specs once the work it brings is done; a `change` moves none.
                cdiDue = cdiDue || batch.overflowed || batch.events.contains { $0.action != "change" }
                agent.handle(batch, wait: false)
            }
        }
    }
}

/// CLOCK_MONOTONIC in microseconds, as sd_notify's MONOTONIC_USEC wants it.
package func monotonicMicroseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
}

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
