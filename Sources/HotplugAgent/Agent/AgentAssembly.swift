import HostInterface
import Logging
import Policy

extension Agent {
    /// The whole stack over one lowest layer: reader, planner, executor, reconciler.
    /// `stateDirectory` keeps where moved devices came from (`/run/hotplug-agent` under the
    /// root); without one the agent cannot put devices back. `stateRoot` is the `--root` it
    /// lies below (its links stay inside), or `/` for a directory named outright.
    package static func assemble(
        kernel: any KernelIO, paths: HostPaths, policies: PolicySet, dryRun: Bool,
        log: Logger, bindSettle: Duration = .seconds(2), stateDirectory: String? = nil,
        stateRoot: String = "/", workers: Int = 16, stuckAfter: Duration = .seconds(30)
    ) -> Agent {
        let origins = stateDirectory.map {
            OriginStore.logging(stateDirectory: $0, root: stateRoot, writable: !dryRun, log: log)
        }
        let reader = SysfsReader(io: kernel, paths: paths, origins: origins)
        let executor = Executor(
            io: kernel, paths: paths, reader: reader, bindSettle: bindSettle, origins: origins,
            iommuGrants: stateDirectory.map { IOMMUGrantStore(stateDirectory: $0, root: stateRoot) })
        let reconciler = Reconciler(
            reader: reader, executor: executor, planner: Planner(policies: policies),
            dryRun: dryRun, log: log)
        let ledger = Ledger(
            records: stateDirectory.map { StatusStore(stateDirectory: $0, root: stateRoot, writable: !dryRun) },
            log: log)
        return Agent(
            reader: reader, reconciler: reconciler, ledger: ledger, log: log, workers: workers,
            stuckAfter: stuckAfter)
    }
}
