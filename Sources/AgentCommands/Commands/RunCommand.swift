import HotplugAgent
import HostInterface
import ArgumentParser
import CLinux
import Glibc
import Policy

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Reconcile every PCI device, then each device udev names, until SIGTERM or SIGINT.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policy: PolicyOptions

    @Flag(help: "Log each action it would take and write nothing.")
    var dryRun = false

    @Flag(help: "Exit once no device has work left: 0 if every action succeeded, 1 if any failed.")
    var once = false

    @Option(
        help: ArgumentHelp(
            "Where to record the drivers devices came from (default /run/hotplug-agent under the root).",
            valueName: "DIR"))
    var stateDir: String?

    @Option(
        help: ArgumentHelp(
            "Write Prometheus metrics to this file (default: hotplug_agent.prom in the node exporter's textfile "
                + "directory, when it exists).",
            valueName: "FILE"))
    var metricsFile: String?

    @Option(
        help: ArgumentHelp(
            "Keep the CDI specs in this directory (default /var/run/cdi under the root).",
            valueName: "DIR"))
    var cdiDir: String?

    @Option(
        help: """
            Devices reconciled at once at most (as many as CPUs, more while probes wait in the kernel; \
            each device and IOMMU group is still one at a time).
            """)
    var workers: Int = 16

    @Option(
        help: ArgumentHelp(
            "Report a device whose read or write has not returned after this many seconds, and go on without it.",
            valueName: "SECONDS"))
    var stuckAfter: Int = 30

    func run() throws {
        // The workers mostly wait on sysfs: two malloc arenas serve them. glibc's default, an
        // arena per thread, would keep some 70 KiB per worker for the daemon's life.
        mallopt(M_ARENA_MAX, 2)
        let host = HostContext(global)
        let stateDirectory = stateDir.map(absolutePath) ?? host.paths.stateDirectory
        let stateRoot = host.paths.walkRoot(chosen: stateDir)
        let signals = once ? nil : SignalPipe(signals: [SIGTERM, SIGINT, SIGHUP])
        let policies = try host.policiesOrExit(policy)
        // Subscribe before enumerating, so nothing that happens during coldplug is lost.
        let monitor: UdevMonitor
        do { monitor = try UdevMonitor(subsystems: ["pci", "vfio", "vfio-dev", "drivers"]) } catch {
            host.log.critical("cannot subscribe to udev: \(error)")
            throw ExitCode(1)
        }
        host.log.info("\(policies.policies.count) policies loaded\(dryRun ? "; dry run, nothing will be written" : "")")
        let agent = Agent.assemble(
            kernel: host.kernel, paths: host.paths, policies: policies, dryRun: dryRun, log: host.log,
            stateDirectory: stateDirectory, stateRoot: stateRoot, workers: workers,
            stuckAfter: .seconds(max(1, stuckAfter)))
        // A dry run writes nothing, CDI specs and metrics included.
        let cdiDirectory = cdiDir.map(absolutePath) ?? CDISpecFiles.defaultDirectory(host.paths)
        let cdi = dryRun ? nil : CDISpecFiles(directory: cdiDirectory, root: host.paths.walkRoot(chosen: cdiDir))
        if let signals {
            let loader = PolicyLoader(paths: host.paths, accounts: HostAccounts(paths: host.paths))
            var daemon = Daemon(agent: agent, monitor: monitor, log: host.log) {
                loader.reload(directories: policy.chosen, log: host.log)
            }
            if !dryRun { daemon.reloadRecord = (stateDirectory + "/reloaded", stateRoot) }
            daemon.cdi = cdi
            if !dryRun {
                daemon.metrics = (metricsFile.map(absolutePath) ?? MetricsFile.defaultPath(host.paths))
                    .map { MetricsFile(path: $0, root: host.paths.walkRoot(chosen: metricsFile)) }
            }
            daemon.watcher = PolicyWatcher(
                directories: policy.chosen?.map(absolutePath) ?? host.paths.policyDirectories)
            throw ExitCode(daemon.run(signals: signals))
        }
        var succeeded = agent.runOnce(events: monitor)
        var cdiFailure: String?
        if let cdi, !cdi.update(from: agent, lastFailure: &cdiFailure) { succeeded = false }
        throw ExitCode(succeeded ? 0 : 1)
    }
}
