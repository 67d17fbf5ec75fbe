import HotplugAgent
import HostInterface
import ArgumentParser
import Policy

/// Where each device a policy matches stands, from sysfs and the agent's state directory,
/// whether or not the daemon runs: settled, waiting (a VM holds it, a write hangs, or the
/// agent has not got to it), refused, or failed (its last error).
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Where each device a policy matches stands: settled, waiting, refused or failed.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policy: PolicyOptions

    @Flag(help: "One JSON object per device.")
    var json = false

    @Option(
        help: ArgumentHelp("The agent's state directory (default /run/hotplug-agent under the root).", valueName: "DIR")
    )
    var stateDir: String?

    func run() throws {
        let host = HostContext(global)
        let state = stateDir.map(absolutePath) ?? host.paths.stateDirectory
        let stateRoot = host.paths.walkRoot(chosen: stateDir)
        let origins = OriginStore.logging(stateDirectory: state, root: stateRoot, writable: false, log: host.log)
        let reader = SysfsReader(io: host.kernel, paths: host.paths, origins: origins)
        let planner = Planner(policies: try host.policiesOrExit(policy))
        let snapshot = try reader.fullViewOrExit()
        let view = reader.read(planner.needs(in: snapshot), into: snapshot)
        let entries = DeviceStatus.all(
            planner.planAll(in: view), view: view, planner: planner,
            records: StatusStore(stateDirectory: state, root: stateRoot, writable: false),
            cdi: planner.cdiSpecs(in: view))
        if json {
            output(prettyJSON(entries))
        } else {
            for entry in entries { output(escapingControlCharacters(entry.line)) }
        }
        // A device that cannot be read (named on standard error) may be one a policy wants.
        if entries.contains(where: { $0.state != "settled" }) || !view.unreadable.isEmpty { throw ExitCode(3) }
    }
}
