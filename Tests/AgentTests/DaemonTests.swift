import Foundation
import Glibc
import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Policy
import Synchronization
import Testing

/// The daemon loop itself, on the simulated host: events, signals and a kernel that hangs.
struct DaemonTests {
    /// Runs the daemon on its own thread until it returns; `signals` stands in for kill(1).
    final class Running: Sendable {
        let signals = SignalPipe(signals: [], installHandlers: false)
        let exit = Mutex<Int32?>(nil)

        init(
            _ host: SimHost, waitRetry: Duration = .seconds(10), reload: @escaping @Sendable () -> PolicySet? = { nil }
        ) {
            var configured = Daemon(agent: host.agent, monitor: host.kernel, log: host.agent.log, reload: reload)
            configured.waitRetry = waitRetry
            let daemon = configured
            startThread { [self] in
                let code = daemon.run(signals: signals)
                exit.withLock { $0 = code }
            }
        }

        /// Sends `signal` and waits up to `limit` for the daemon to return.
        func stop(_ signal: Int32 = SIGTERM, limit: Duration = .seconds(5)) -> Int32? {
            signals.send(signal)
            return waitFor(limit) { exit.withLock { $0 } != nil } ? exit.withLock { $0 } : nil
        }
    }

    @Test func aProbeThatNeverReturnsHoldsUpNoOtherDeviceAndSIGTERMStillEndsTheDaemon() throws {
        let host = try SimHost(
            try SimHost.load("seed-000-mi300x.json"), policies: try SimHost.examplePolicy("seed-000"),
            stuckAfter: .milliseconds(300))
        let hung = PCIAddress("0000:12:00.0")!
        host.kernel.hangProbe(hung)
        defer { host.kernel.releaseHungProbes() }
        let started = ContinuousClock.now
        let daemon = Running(host)
        let claimedAndOwned = {
            host.addresses { $0.driver == "vfio-pci" }.filter { host.node(host.device($0)!.group!)?.uid == 1000 }.count
        }
        #expect(waitFor(.seconds(10)) { claimedAndOwned() == 15 })
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(host.device(hung.description)?.driver == nil)
        let stuck = "error: \(hung) stuck: a read or write has not returned"
        #expect(waitFor(.seconds(2)) { !host.log.containing(stuck).isEmpty })
        let stopping = ContinuousClock.now
        #expect(daemon.stop() == 0)
        #expect(ContinuousClock.now - stopping < .seconds(3))
    }

    @Test func sighupWithoutThePolicyPutsDevicesBack() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        let daemon = Running(host) { PolicySet([]) }
        #expect(waitFor(.seconds(10)) { host.addresses { $0.driver == "vfio-pci" }.count == 16 })
        daemon.signals.send(SIGHUP)
        #expect(waitFor(.seconds(10)) { host.addresses { $0.driver == "mlx5_core" }.count == 8 })
        #expect(waitFor(.seconds(5)) { host.addresses { $0.driver == "vfio-pci" }.isEmpty })
        #expect(daemon.stop() == 0)
    }

    @Test func sighupWithABadFileKeepsThePoliciesRunningAndLogsEveryError() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        let tree = try FakeSysfs()
        try tree.mkdir("/policies")
        try tree.file("/policies/10-bad.toml", "[[policy]]\nname = \"x\"\nmatch.ids = [\"1002:74a\"]\ndriver = 5\n")
        let loader = PolicyLoader(paths: HostPaths(root: tree.root), accounts: TableAccounts(users: [:], groups: [:]))
        let directory = tree.path("/policies"), log = host.agent.log
        let daemon = Running(host) { loader.reload(directories: [directory], log: log) }
        #expect(waitFor(.seconds(10)) { host.addresses { $0.driver == "vfio-pci" }.count == 16 })
        let history = host.history
        daemon.signals.send(SIGHUP)
        #expect(waitFor(.seconds(5)) { !host.log.containing("reload refused").isEmpty })
        #expect(
            host.log.containing(
                "error: \(tree.path("/policies/10-bad.toml")):3: match.ids: \"1002:74a\" is not vvvv:dddd"
            ).count == 1)
        #expect(
            host.log.containing(
                "error: \(tree.path("/policies/10-bad.toml")):4: driver: expected a string, found an integer"
            ).count == 1)
        #expect(host.log.containing("error: reload refused: 2 errors; the previous policies stay in force").count == 1)
        usleep(200_000)
        #expect(host.history == history)
        #expect(host.agent.planner.policies.policies.map(\.name) == ["mi300x", "connectx-7"])
        #expect(daemon.stop() == 0)
    }

    @Test func aHotplugWhileTheDaemonSleepsIsHandled() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        let daemon = Running(host)
        #expect(waitFor(.seconds(10)) { host.addresses { $0.driver == "vfio-pci" }.count == 16 })
        try host.kernel.loadModule("mlx5_core")
        host.kernel.unplug(PCIAddress("0000:23:00.0")!)
        try host.plugAgain("0000:23:00.0")
        #expect(waitFor(.seconds(10)) { host.device("0000:23:00.0")?.driver == "vfio-pci" })
        #expect(
            Array(host.history.suffix(3)) == [
                "bind 0000:23:00.0 mlx5_core", "unbind 0000:23:00.0 mlx5_core", "bind 0000:23:00.0 vfio-pci"
            ])
        #expect(daemon.stop() == 0)
    }
}

/// Polls `condition` every 10 ms until it holds or `limit` passes.
func waitFor(_ limit: Duration, _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// The daemon reloads by itself when a policy directory changes, also the way a
/// Kubernetes ConfigMap volume changes (`..data` swapped to a new timestamped directory).
struct PolicyWatcherTests {
    /// The daemon on `host`, reloading `directory` (below `tree`) when the watcher says so,
    /// after 100 ms of quiet; send SIGTERM to the pipe to end it.
    func watching(_ directory: String, below tree: FakeSysfs, _ host: SimHost) throws -> SignalPipe {
        let loader = PolicyLoader(paths: HostPaths(root: tree.root), accounts: TableAccounts(users: [:], groups: [:]))
        let log = host.agent.log
        var daemon = Daemon(agent: host.agent, monitor: host.kernel, log: log) {
            loader.reload(directories: [directory], log: log)
        }
        daemon.watcher = PolicyWatcher(directories: [directory])
        daemon.quietBeforeReload = .milliseconds(100)
        let signals = SignalPipe(signals: [], installHandlers: false)
        startThread { [daemon] in _ = daemon.run(signals: signals) }
        return signals
    }

    @Test func aChangedDirectoryReloadsAfterAQuietMomentAndAConfigMapSwapToo() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: "")
        let tree = try FakeSysfs()
        let directory = tree.path("/configmap")
        try tree.mkdir("/configmap/..2026_11_29_01")
        try tree.file(
            "/configmap/..2026_11_29_01/50.toml",
            "[[policy]]\nname = \"first\"\nmatch.ids = [\"1002:74a1\"]\ndriver = \"vfio-pci\"\n")
        try tree.link("/configmap/..data", to: "..2026_11_29_01")
        try tree.link("/configmap/50.toml", to: "..data/50.toml")
        let signals = try watching(directory, below: tree, host)
        defer { signals.send(SIGTERM) }
        #expect(host.agent.planner.policies.policies.isEmpty)
        // A file touched in place: reloaded, no SIGHUP.
        try tree.file(
            "/configmap/..2026_11_29_01/50.toml",
            "[[policy]]\nname = \"first\"\nmatch.ids = [\"1002:74a1\"]\ndriver = \"vfio-pci\"\n")
        #expect(FileManager.default.createFile(atPath: tree.path("/configmap/touched"), contents: nil))
        #expect(waitFor(.seconds(5)) { host.agent.planner.policies.policies.map(\.name) == ["first"] })
        #expect(waitFor(.seconds(10)) { host.addresses { $0.driver == "vfio-pci" }.count == 8 })
        // The ConfigMap way: a new directory, then ..data renamed over the old link.
        try tree.mkdir("/configmap/..2026_11_29_02")
        try tree.file(
            "/configmap/..2026_11_29_02/50.toml",
            "[[policy]]\nname = \"second\"\nmatch.ids = [\"15b3:1021\"]\ndriver = \"vfio-pci\"\n")
        try tree.link("/configmap/..data_tmp", to: "..2026_11_29_02")
        #expect(rename(tree.path("/configmap/..data_tmp"), tree.path("/configmap/..data")) == 0)
        #expect(waitFor(.seconds(5)) { host.agent.planner.policies.policies.map(\.name) == ["second"] })
        #expect(waitFor(.seconds(10)) { host.addresses { $0.driver == "mlx5_core" }.isEmpty })
        #expect(host.log.containing("notice: the policy directories changed").count >= 2)
    }
}

extension PolicyWatcherTests {
    /// The package's /usr/lib directory may not exist at start; an admin may delete a
    /// directory and make it again: both are noticed, and nothing else is.
    @Test func aDirectoryMadeAfterStartOrMadeAgainIsWatched() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: "")
        let tree = try FakeSysfs()
        let directory = tree.path("/usr/lib/hotplug-agent/policies.d")
        try tree.mkdir("/usr/lib")
        let signals = try watching(directory, below: tree, host)
        defer { signals.send(SIGTERM) }
        // Something else made beside it: no reload.
        try tree.mkdir("/usr/lib/other")
        usleep(400_000)
        #expect(host.log.containing("notice: the policy directories changed").isEmpty)
        // The directory appears, then its file: reloaded.
        try tree.mkdir("/usr/lib/hotplug-agent/policies.d")
        try tree.file(
            "/usr/lib/hotplug-agent/policies.d/50.toml", "[[policy]]\nname = \"first\"\nmatch.ids = [\"1002:74a1\"]\n")
        #expect(waitFor(.seconds(5)) { host.agent.planner.policies.policies.map(\.name) == ["first"] })
        // Deleted and made again, with another file: reloaded again.
        try FileManager.default.removeItem(atPath: directory)
        // A directory named with --policy-dir must exist: that reload is refused, the old kept.
        #expect(waitFor(.seconds(5)) { host.log.containing("reload refused").count == 1 })
        try tree.mkdir("/usr/lib/hotplug-agent/policies.d")
        try tree.file(
            "/usr/lib/hotplug-agent/policies.d/60.toml", "[[policy]]\nname = \"second\"\nmatch.ids = [\"1002:74a1\"]\n")
        #expect(waitFor(.seconds(5)) { host.agent.planner.policies.policies.map(\.name) == ["second"] })
    }
}

extension PolicyWatcherTests {
    /// A policy directory renamed away and replaced, again and again (a deploy tool's
    /// swap), leaves no watch on the directories it went to: each counts against the user's
    /// inotify limit, and a change in one made a reload. The new one is still watched.
    @Test func aPolicyDirectorySwappedAgainAndAgainLeavesOneWatch() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/policies")
        let watcher = try #require(PolicyWatcher(directories: [tree.path("/policies")]))
        for swap in 0..<50 {
            #expect(rename(tree.path("/policies"), tree.path("/old\(swap)")) == 0)
            try tree.mkdir("/policies")
            #expect(watcher.drain())
        }
        let info = try String(contentsOfFile: "/proc/self/fdinfo/\(watcher.fileDescriptor)", encoding: .utf8)
        #expect(info.split(separator: "\n").filter { $0.hasPrefix("inotify wd:") }.count == 1)
        try tree.file("/old7/50.toml", "")
        #expect(!watcher.drain())
        try tree.file("/policies/50.toml", "")
        #expect(watcher.drain())
    }

    /// A directory above a missing policy directory, watched for the next name on the way,
    /// removed or renamed away: the walk goes up again from there, so what is made later is
    /// still seen (this round's attacker: once the watches no walk needs were removed, an
    /// ancestor's removal sent only the end of its watch, and nothing was watched any more).
    @Test(arguments: ["remove", "rename"])
    func anAncestorRemovedOrRenamedIsWalkedUpFrom(how: String) throws {
        let tree = try FakeSysfs()
        let watcher = try #require(PolicyWatcher(directories: [tree.path("/run/etc/hotplug-agent/policies.d")]))
        try tree.mkdir("/run/etc")
        #expect(watcher.drain())
        if how == "remove" {
            #expect(rmdir(tree.path("/run/etc")) == 0)
        } else {
            #expect(rename(tree.path("/run/etc"), tree.path("/run/etc.old")) == 0)
        }
        #expect(watcher.drain())
        try tree.mkdir("/run/etc/hotplug-agent/policies.d")
        #expect(watcher.drain())
        try tree.file("/run/etc/hotplug-agent/policies.d/50.toml", "")
        #expect(watcher.drain())
        let info = try String(contentsOfFile: "/proc/self/fdinfo/\(watcher.fileDescriptor)", encoding: .utf8)
        #expect(info.split(separator: "\n").filter { $0.hasPrefix("inotify wd:") }.count == 1)
    }
}

/// Metrics through the node exporter's textfile collector: rewritten after each change.
struct MetricsTests {
    @Test func theDaemonWritesDevicesPerPolicyAndStateActionsAndReloads() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        let tree = try FakeSysfs()
        let file = tree.path("/textfile/hotplug_agent.prom")
        var daemon = Daemon(agent: host.agent, monitor: host.kernel, log: host.agent.log) { PolicySet([]) }
        daemon.metrics = MetricsFile(path: file)
        let signals = SignalPipe(signals: [], installHandlers: false)
        startThread { [daemon] in _ = daemon.run(signals: signals) }
        defer { signals.send(SIGTERM) }
        func metrics() -> String { (try? String(contentsOfFile: file, encoding: .utf8)) ?? "" }
        #expect(
            waitFor(.seconds(10)) {
                metrics().contains("hotplug_agent_devices{policy=\"mi300x\",state=\"settled\"} 8\n")
            })
        let text = metrics()
        #expect(text.contains("hotplug_agent_devices{policy=\"connectx-7\",state=\"settled\"} 8\n"))
        #expect(text.contains("# TYPE hotplug_agent_actions_total counter\n"))
        #expect(text.contains("hotplug_agent_actions_total{action=\"bind\"} 16\n"))
        #expect(text.contains("hotplug_agent_action_failures_total{action=\"bind\"} 0\n"))
        #expect(!text.contains("hotplug_agent_last_reload"))
        signals.send(SIGHUP)
        #expect(waitFor(.seconds(10)) { metrics().contains("hotplug_agent_last_reload_success 1\n") })
        #expect(waitFor(.seconds(10)) { metrics().contains("hotplug_agent_actions_total{action=\"restore\"} 16\n") })
        #expect(!metrics().contains("hotplug_agent_devices{"))
    }

    /// Metrics are written only while the workers are idle, so while they are busy their
    /// deadline must not wake the loop: it would spin through a long probe.
    @Test func metricsDueWhileWorkersAreBusyDoNotSpinTheLoop() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        let hung = PCIAddress("0000:12:00.0")!
        host.kernel.hangProbe(hung)
        defer { host.kernel.releaseHungProbes() }
        let tree = try FakeSysfs()
        var daemon = Daemon(agent: host.agent, monitor: host.kernel, log: host.agent.log) { PolicySet([]) }
        daemon.metrics = MetricsFile(path: tree.path("/textfile/hotplug_agent.prom"))
        let signals = SignalPipe(signals: [], installHandlers: false)
        let cpu = Mutex<Duration?>(nil)
        startThread { [daemon] in
            _ = daemon.run(signals: signals)
            var used = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &used)
            cpu.withLock { $0 = .seconds(used.tv_sec) + .nanoseconds(used.tv_nsec) }
        }
        #expect(waitFor(.seconds(10)) { host.addresses { $0.driver == "vfio-pci" }.count == 15 })
        sleep(for: .seconds(1))
        signals.send(SIGTERM)
        host.kernel.releaseHungProbes()
        #expect(waitFor(.seconds(10)) { cpu.withLock { $0 } != nil })
        // Asleep in poll() while the probe hangs: a loop that spun would have used about a second.
        #expect(try #require(cpu.withLock { $0 }) < .milliseconds(400))
    }

    /// A textfile directory swapped for another user's link: refused, and said once.
    @Test(.enabled(if: runningAsRoot, "lchown needs root"))
    func aMetricsFileThatCannotBeWrittenSafelyIsReportedNotWrittenThroughALink() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        let tree = try FakeSysfs()
        try tree.mkdir("/elsewhere")
        try tree.link("/textfile", to: tree.path("/elsewhere"))
        lchown(tree.path("/textfile"), 1000, 1000)
        var daemon = Daemon(agent: host.agent, monitor: host.kernel, log: host.agent.log) { PolicySet([]) }
        daemon.metrics = MetricsFile(path: tree.path("/textfile/hotplug_agent.prom"))
        let signals = SignalPipe(signals: [], installHandlers: false)
        startThread { [daemon] in _ = daemon.run(signals: signals) }
        defer { signals.send(SIGTERM) }
        #expect(waitFor(.seconds(10)) { !host.log.containing("warning: metrics not written: open ").isEmpty })
        #expect(host.log.containing("is not owned by root (owner uid 1000); refused").count == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tree.path("/elsewhere")).isEmpty)
    }
}
