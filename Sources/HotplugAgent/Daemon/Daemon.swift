import HostInterface
import Glibc
import Logging
import Policy

/// The long-running daemon, as `run` configures it: the agent, its event source, and what
/// it keeps besides the devices (metrics, CDI specs, the reload record). Its loop is
/// `DaemonLoop`.
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

    /// Runs until SIGTERM or SIGINT (0), or until poll() fails (1).
    package func run(signals: SignalPipe) -> Int32 {
        var loop = DaemonLoop(self, signals: signals)
        return loop.run()
    }
}

/// CLOCK_MONOTONIC in microseconds, as sd_notify's MONOTONIC_USEC wants it.
package func monotonicMicroseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
}
