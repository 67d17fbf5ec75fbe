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

    /// The reader and the accounts of the chosen host, and the simulated host's description.
    func open<Lab: Laboratory>(
        _ context: HostContext, lab: Lab.Type
    ) throws -> (reader: SysfsReader, accounts: any AccountResolver, description: HostDescription?) {
        guard let file else { return (context.reader, HostAccounts(paths: context.paths), nil) }
        let host = try lab.host(file)
        let accounts = TableAccounts(users: host.description.users ?? [:], groups: host.description.groups ?? [:])
        return (SysfsReader(io: host.io, paths: host.paths), accounts, host.description)
    }
}

/// The host a command reads (this one, or the simulated one `--host` names), with its
/// accounts and the policies that load against them.
struct ChosenHost {
    let context: HostContext
    let reader: SysfsReader
    let accounts: any AccountResolver
    let policies: PolicySet
    /// The simulated host's description; nil for this host.
    let description: HostDescription?
    /// Whether it is a simulated host: it has no files outside sysfs, and this machine's are not its.
    var simulated: Bool { description != nil }

    var planner: Planner { Planner(policies: policies) }

    /// The host and its policies; exits 1 when the policies do not load.
    init<Lab: Laboratory>(
        _ global: GlobalOptions, _ policy: PolicyOptions, _ source: HostSourceOptions,
        lab: Lab.Type
    ) throws {
        context = HostContext(global)
        (reader, accounts, description) = try source.open(context, lab: lab)
        policies = try context.policiesOrExit(policy, accounts: accounts)
    }

    /// Every device, with what the planner needs read about them; exits 1 when the host
    /// cannot be read.
    func plannedView() throws -> HostView {
        let snapshot = try reader.fullViewOrExit()
        return reader.read(planner.needs(in: snapshot), into: snapshot)
    }
}

/// The real host under the chosen root.
struct HostContext {
    let paths: HostPaths
    let kernel: RealKernelIO
    let log: Logger

    init(_ options: GlobalOptions) {
        paths = HostPaths(root: options.root)
        // A tree under another root is sysfs only for the bench that says so (its tree is laid
        // out once and never changes): see `RealKernelIO.sysfs`.
        let asSysfs = paths.root != "/" && getenvString("HOTPLUG_AGENT_TREE_AS_SYSFS") == "1"
        kernel = RealKernelIO(paths: paths, modprobe: getenvString("HOTPLUG_AGENT_MODPROBE"), asSysfs: asSysfs)
        log = .lines(level: options.logLevel)
    }

    /// Reads the host, with where the agent moved devices from (read only).
    var reader: SysfsReader {
        SysfsReader(
            io: kernel, paths: paths,
            origins: OriginStore.logging(
                stateDirectory: paths.stateDirectory, root: paths.root, writable: false, log: log))
    }

    /// Loads the policies; on any error prints them all to standard error and exits 1.
    func policiesOrExit(_ options: PolicyOptions, accounts: (any AccountResolver)? = nil) throws -> PolicySet {
        let (policies, errors, _) = PolicyLoader(paths: paths, accounts: accounts ?? HostAccounts(paths: paths)).load(
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
    /// Every device of the host, or exit 1 saying why; each device that cannot be read is
    /// named on standard error, and the others are shown.
    package func fullViewOrExit() throws -> HostView {
        let view: HostView
        do { view = try fullView() } catch {
            LineLogHandler.error("hotplug-agent: cannot read the host: \(error)")
            throw ExitCode(1)
        }
        for (address, why) in view.unreadable.sorted(by: { $0.key < $1.key }) {
            LineLogHandler.error("hotplug-agent: \(address) cannot be read, left out: \(why)")
        }
        return view
    }
}
