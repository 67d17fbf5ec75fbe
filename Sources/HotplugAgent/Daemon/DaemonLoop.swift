import Glibc
import HostInterface
import Logging
import Policy

/// When the daemon must wake besides its sources, one deadline per timer.
struct Deadlines {
    /// WATCHDOG=1, when systemd asks for it.
    var watchdog: ContinuousClock.Instant?
    /// The timed look at devices that wait for a VM.
    var waitRetry: ContinuousClock.Instant
    /// A reload once the policy directories have been quiet for a moment.
    var reload: ContinuousClock.Instant?
    /// The metrics file, when it is due to be written (at most once a second).
    var metrics: ContinuousClock.Instant?
    /// The earliest the metrics may be written again.
    var metricsNotBefore = ContinuousClock.now

    /// poll()'s timeout: the nearest deadline, at most a second while workers are busy (to
    /// report devices whose writes do not return), forever when nothing is due. Metrics are
    /// written only while the workers are idle: their deadline counts only then.
    func timeout(busy: Bool, waiting: Bool) -> Int32 {
        var timeout: Int32 = busy ? 1000 : -1
        for due in [watchdog, waiting ? waitRetry : nil, reload, busy ? nil : metrics].compactMap({ $0 }) {
            let left = (due - ContinuousClock.now).pollMilliseconds
            timeout = timeout < 0 ? left : min(timeout, left)
        }
        return timeout
    }
}

/// The daemon's loop: asleep in poll() until one of its sources has something, so an idle
/// daemon costs nothing, with one handler per source (udev, signals, the policy watcher,
/// the holders' pidfds, the timers) and, each time the workers run out of work, what
/// follows work (CDI specs, READY=1, metrics). SIGHUP reloads; SIGTERM and SIGINT end it.
struct DaemonLoop {
    private let daemon: Daemon
    private let signals: SignalPipe
    /// Written when the workers run out of work, so what follows work is not left until the
    /// next timeout.
    private let settled = SignalPipe(signals: [], installHandlers: false)
    private let holders = HolderWatch()
    private var deadlines: Deadlines
    private var agent: Agent { daemon.agent }
    private var log: Logger { daemon.log }

    private var wasBusy = true
    private var cdiDue = false
    private var ready = false
    /// What READY=1 says, and the outcome a reload leaves for `hotplug-agent reload`.
    private var readyStatus = "coldplug done; handling events"
    private var reloadOutcome: String?
    private var reloads = 0
    private var lastReload: MetricsFile.Reload?
    /// Failures said once each, and once more when they are over.
    private var metricsFailure: String?
    private var cdiFailure: String?
    private var pidfdRefused: Errno?
    private var watchedCount = 0

    init(_ daemon: Daemon, signals: SignalPipe) {
        self.daemon = daemon
        self.signals = signals
        // Numbered on from the last daemon's record (see `ReloadRecord`).
        reloads = daemon.reloadRecord.flatMap { try? ReloadRecord.read($0.path, root: $0.root).get()?.generation } ?? 0
        deadlines = Deadlines(watchdog: daemon.notifier.watchdogInterval.map { ContinuousClock.now + $0 },
                              waitRetry: ContinuousClock.now + daemon.waitRetry,
                              metrics: daemon.metrics != nil ? ContinuousClock.now : nil)
    }

    mutating func run() -> Int32 {
        agent.reconcileAll(wait: false, forgettingDeparted: true)
        agent.handle(daemon.monitor.drain(), wait: false)
        let settled = self.settled
        agent.whenIdle { settled.send(0) }
        defer { agent.whenIdle {} }
        let sources = [daemon.monitor.fileDescriptor, signals.readFD, daemon.watcher?.fileDescriptor ?? -1,
                       settled.readFD]
        while true {
            if afterWork() { continue }
            var fds = (sources + holders.descriptors).map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let polled = poll(&fds, nfds_t(fds.count), deadlines.timeout(busy: agent.isBusy, waiting: agent.hasWaiting))
            if fds[3].revents != 0 { _ = settled.take() }
            if polled > 0, holders.takeExited(Array(fds[sources.count...])) {
                lookAgainAtWaiting("a process a device waits for has exited")
            }
            onTimers()
            if polled < 0 {
                if Errno.current == .EINTR { continue }
                log.critical("poll: \(Errno.current)")
                return 1
            }
            if fds[2].revents != 0 { onPolicyDirectoryChange() }
            if let exit = onSignals(fds[1].revents != 0 ? signals.take() : []) { return exit }
            if fds[0].revents != 0 { onEvents() }
        }
    }

    /// What follows work, once the workers are idle: the CDI specs, watching the processes
    /// devices wait for, READY=1, the metrics. Returns whether to look again at once.
    private mutating func afterWork() -> Bool {
        let busy = agent.isBusy
        // The CDI specs at once when work settles (before READY=1): a device that left
        // VFIO leaves them before a runtime is handed it again.
        if wasBusy || cdiDue, !busy, let cdi = daemon.cdi {
            cdiDue = false
            cdi.update(from: agent, lastFailure: &cdiFailure)
        }
        // The VMs devices wait for: one that exits lets them go (closing sends no uevent).
        if !busy, holders.watch(agent.waitedFor) {
            lookAgainAtWaiting("a process a device waits for has exited")
            return true
        }
        // READY=1 once coldplug, or the pass a reload started, has settled (a stuck device
        // does not hold it back): `systemctl reload` returns with devices moved.
        if !ready && !busy { becomeReady() }
        if busy {
            wasBusy = true
        } else if wasBusy {
            wasBusy = false
            metricsAreDue()
        }
        if ready, !busy, let due = deadlines.metrics, ContinuousClock.now >= due { writeMetrics() }
        sayWhatIsWatched()
        return false
    }

    private mutating func becomeReady() {
        ready = true
        if let outcome = reloadOutcome, let record = daemon.reloadRecord {
            try? writeFileAtomically(
                record.path, outcome, fileMode: 0o644, directoryMode: 0o755, durable: false, root: record.root,
                readBack: .rootOrHandedOver)
        }
        reloadOutcome = nil
        daemon.notifier.send("READY=1\nSTATUS=\(readyStatus)")
        log.info("\(readyStatus)")
    }

    /// Metrics once the agent is idle after work, at most once a second.
    private mutating func writeMetrics() {
        guard let metrics = daemon.metrics else { return }
        let text = MetricsFile.text(devices: agent.statuses(), actions: agent.ledger.actions, reload: lastReload)
        let failure = metrics.write(text).map { "\($0)" }
        if let failure, failure != metricsFailure { log.warning("metrics not written: \(failure)") }
        if failure == nil, metricsFailure != nil { log.notice("metrics written again") }
        metricsFailure = failure
        deadlines.metrics = nil
        deadlines.metricsNotBefore = ContinuousClock.now + .seconds(1)
    }

    private mutating func metricsAreDue() {
        if daemon.metrics != nil, deadlines.metrics == nil { deadlines.metrics = deadlines.metricsNotBefore }
    }

    private mutating func sayWhatIsWatched() {
        if let refused = holders.refused, refused != pidfdRefused {
            let why = "pidfd_open: \(refused)"
            log.warning("cannot watch the processes devices wait for (\(why)); looking every \(daemon.waitRetry)")
            pidfdRefused = refused
        }
        if holders.descriptors.count != watchedCount {
            watchedCount = holders.descriptors.count
            log.debug("watching \(watchedCount) processes devices wait for")
        }
    }

    /// Devices that wait for a VM are looked at again (and the CDI specs after them).
    private mutating func lookAgainAtWaiting(_ why: String? = nil) {
        if let why { log.info("\(why); looking again") }
        agent.retryWaiting(wait: false)
        cdiDue = true
    }

    /// Stuck writes, the timed look at waiting devices, the watchdog.
    private mutating func onTimers() {
        agent.checkForStuck()
        if ContinuousClock.now >= deadlines.waitRetry {
            deadlines.waitRetry = ContinuousClock.now + daemon.waitRetry
            if agent.hasWaiting { lookAgainAtWaiting() }
        }
        if let due = deadlines.watchdog, ContinuousClock.now >= due, let interval = daemon.notifier.watchdogInterval {
            daemon.notifier.send("WATCHDOG=1")
            deadlines.watchdog = ContinuousClock.now + interval
        }
    }

    /// Quiet for a moment first: an editor's or a ConfigMap's burst is one reload.
    private mutating func onPolicyDirectoryChange() {
        if daemon.watcher?.drain() == true { deadlines.reload = ContinuousClock.now + daemon.quietBeforeReload }
    }

    /// SIGHUP (or a quiet policy directory) reloads; any other signal ends the loop with
    /// the exit status returned.
    private mutating func onSignals(_ received: [Int32]) -> Int32? {
        var received = received
        if let due = deadlines.reload, ContinuousClock.now >= due {
            deadlines.reload = nil
            log.notice("the policy directories changed")
            received.append(SIGHUP)
        }
        for signal in received {
            guard signal == SIGHUP else {
                log.notice("signal \(signal): finishing the steps in progress, then exiting")
                daemon.notifier.send("STOPPING=1")
                if !agent.stop(grace: .seconds(10)) {
                    log.warning("leaving while a read or write has not returned; the kernel still holds it")
                }
                return 0
            }
            reload()
        }
        return nil
    }

    private mutating func reload() {
        log.notice("reloading policies")
        // Type=notify-reload: RELOADING=1 with the time; READY=1 once the new policies are
        // in force on every device that can move now, or at once when they were refused
        // and the old ones kept.
        daemon.notifier.send("RELOADING=1\nMONOTONIC_USEC=\(monotonicMicroseconds())")
        let policies = daemon.reload()
        if let policies {
            agent.planner = Planner(policies: policies)
            agent.reconcileAll(wait: false)
            cdiDue = true
        }
        // Any record's number, even the largest, is followed by another (`reload` waits for a
        // different one): 0 after Int.max, never a trap.
        reloads = reloads == Int.max ? 0 : reloads + 1
        lastReload = MetricsFile.Reload(time: unixTime(), succeeded: policies != nil)
        metricsAreDue()
        reloadOutcome = "\(reloads) \(policies == nil ? "refused" : "ok")\n"
        readyStatus = policies == nil ? "policies refused, the old ones kept; handling events"
                                      : "policies reloaded; handling events"
        ready = false
    }

    /// A batch of uevents: whatever moves a device (a removal asks for no reconcile) is
    /// looked at for the CDI specs once the work it brings is done; a `change` moves none.
    private mutating func onEvents() {
        let batch = daemon.monitor.drain()
        cdiDue = cdiDue || batch.overflowed || batch.events.contains { $0.action != "change" }
        agent.handle(batch, wait: false)
    }
}
