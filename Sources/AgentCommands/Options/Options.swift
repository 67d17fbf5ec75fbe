import HotplugAgent
import HostInterface
import ArgumentParser
import Glibc
import Logging
import Policy

/// Options every command shares.
package struct GlobalOptions: ParsableArguments {
    package init() {}

    @Option(name: .long, help: ArgumentHelp("Treat DIR as / for every path: /sys, /dev, /etc, /run.", valueName: "DIR"))
    package var root: String = "/"

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    package var logLevel: Logger.Level = .info
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// `--policy-dir DIR`, repeatable: replaces /etc and /usr/lib's policies.d.
package struct PolicyOptions: ParsableArguments {
    package init() {}

    @Option(
        name: .customLong("policy-dir"),
        help: ArgumentHelp("Read policies from DIR instead of the default directories (repeatable).", valueName: "DIR"))
    var directories: [String] = []

    package var chosen: [String]? { directories.isEmpty ? nil : directories }
}

/// `--host FILE`: read a simulated host built from a host description instead of this one.
package struct HostSourceOptions: ParsableArguments {
    package init() {}

    @Option(
        name: .customLong("host"),
        help: ArgumentHelp(
            "Read the simulated host built from this host description (record's format) instead.", valueName: "FILE"))
    var file: String?

    /// The reader and the accounts of the chosen host.
    func open<Lab: Laboratory>(
        _ context: HostContext, lab: Lab.Type
    ) throws -> (reader: SysfsReader, accounts: any AccountResolver) {
        guard let file else { return (context.reader, HostAccounts(paths: context.paths)) }
        let host = try lab.host(file)
        return (
            SysfsReader(io: host.io, paths: host.paths),
            TableAccounts(users: host.description.users ?? [:], groups: host.description.groups ?? [:])
        )
    }
}

/// The real host under the chosen root.
struct HostContext {
    let paths: HostPaths
    let kernel: RealKernelIO
    let log: Logger

    init(_ options: GlobalOptions) {
        paths = HostPaths(root: options.root)
        kernel = RealKernelIO(paths: paths, modprobe: getenvString("HOTPLUG_AGENT_MODPROBE"))
        log = .lines(level: options.logLevel)
    }

    /// Reads the host, with where the agent moved devices from (read only).
    var reader: SysfsReader {
        SysfsReader(
            io: kernel, paths: paths, origins: OriginStore(stateDirectory: paths.stateDirectory, root: paths.root))
    }

    /// Loads the policies; on any error prints them all to standard error and exits 1.
    func policiesOrExit(_ options: PolicyOptions, accounts: (any AccountResolver)? = nil) throws -> PolicySet {
        let (policies, errors) = PolicyLoader(paths: paths, accounts: accounts ?? HostAccounts(paths: paths)).load(
            directories: options.chosen)
        guard errors.isEmpty else {
            for error in errors { LineLogHandler.error("\(error)") }
            LineLogHandler.error("hotplug-agent: the policies do not load; nothing was done")
            throw ExitCode(1)
        }
        return policies
    }
}

extension SysfsReader {
    /// Every device of the host, or exit 1 saying why.
    package func fullViewOrExit() throws -> HostView {
        do { return try fullView() } catch {
            LineLogHandler.error("hotplug-agent: cannot read the host: \(error)")
            throw ExitCode(1)
        }
    }
}
