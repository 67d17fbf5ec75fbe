import Logging
import Policy

extension Agent {
    /// The whole stack over one lowest layer: reader, planner, executor, reconciler.
    static func assemble(kernel: any KernelIO, paths: HostPaths, policies: PolicySet, dryRun: Bool,
                         log: Logger, bindSettle: Duration = .seconds(2)) -> Agent {
        let reader = SysfsReader(io: kernel, paths: paths)
        let executor = Executor(io: kernel, paths: paths, reader: reader, bindSettle: bindSettle)
        let reconciler = Reconciler(reader: reader, executor: executor, planner: Planner(policies: policies),
                                    dryRun: dryRun, log: log)
        return Agent(reader: reader, reconciler: reconciler, log: log)
    }
}
