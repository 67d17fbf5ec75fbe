import HostInterface
import ArgumentParser
import Policy

/// Where each device a policy matches stands, from sysfs and the agent's state directory,
/// whether or not the daemon runs: settled, waiting (a VM holds it, a write hangs, or the
/// agent has not got to it), refused, or failed (its last error).
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Where each device a policy matches stands: settled, waiting, refused or failed.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policy: PolicyOptions

    @Flag(help: "One JSON object per device.")
    var json = false

    @Option(help: ArgumentHelp("The agent's state directory (default /run/hotplug-agent under the root).", valueName: "DIR"))
    var stateDir: String?

    func run() throws {
        let host = HostContext(global)
        let state = stateDir.map(absolutePath) ?? host.paths.stateDirectory
        let stateRoot = host.paths.walkRoot(chosen: stateDir)
        let origins = OriginStore(stateDirectory: state, root: stateRoot)
        let reader = SysfsReader(io: host.kernel, paths: host.paths, origins: origins)
        let planner = Planner(policies: try host.policiesOrExit(policy))
        let view = reader.enrich(try reader.fullViewOrExit(), for: planner)
        let entries = DeviceStatus.all(planner.planAll(in: view), view: view, planner: planner,
                                       records: StatusStore(stateDirectory: state, root: stateRoot),
                                       cdi: planner.cdiSpecs(in: view))
        if json {
            output(prettyJSON(entries))
        } else {
            for entry in entries { output(escapingControlCharacters(entry.line)) }
        }
        if entries.contains(where: { $0.state != "settled" }) { throw ExitCode(3) }
    }
}

/// One device's standing, as `status` prints it.
struct DeviceStatus: Encodable, Equatable {
    var address: String
    var policy: String
    var wants: String?
    var driver: String?
    /// `/dev/vfio/<group>`'s owner, group and mode (`1000:993 0660`).
    var node: String?
    /// The driver it was on before the agent moved it.
    var origin: String?
    /// `settled`, `waiting`, `refused` or `failed`.
    var state: String
    var reason: String?
    /// Its names in the CDI specs (`hotplug-agent.io/vfio=gpu-0`), while it is in one.
    var cdi: [String] = []

    /// `cdi`: the specs to name devices from (`status` passes the host's; metrics need none).
    static func all(_ plans: [DevicePlan], view: HostView, planner: Planner, records: StatusStore,
                    cdi specs: [CDISpec] = []) -> [DeviceStatus] {
        plans.compactMap { plan in
            guard let policy = plan.policy else { return nil }
            let device = plan.device
            let wants = planner.policies.policies.first { $0.name == policy }.flatMap { planner.target(of: $0, for: device, in: view) }
            var entry = DeviceStatus(address: device.address.description, policy: policy, wants: wants?.description, driver: device.driver,
                                     node: device.iommuGroup.flatMap { view.vfioNodes[$0] }?.description,
                                     origin: device.origin.map { $0.driver ?? "none" }, state: "settled", reason: nil,
                                     cdi: planner.cdiNames(of: device.address, in: specs))
            switch records.load(device.address) {
            case .failed(let error)?:
                (entry.state, entry.reason) = ("failed", error)
            case .stuck(let what)?:
                (entry.state, entry.reason) = ("waiting", what)
            case nil:
                if let wait = plan.waits.first {
                    (entry.state, entry.reason) = ("waiting", "\(wait.what): \(wait.reason)")
                } else if let refusal = plan.refusals.first {
                    (entry.state, entry.reason) = ("refused", "\(refusal.what): \(refusal.reason)")
                } else if let step = plan.steps.first {
                    (entry.state, entry.reason) = ("waiting", "not done yet: \(step.action.summary)")
                }
            }
            return entry
        }
    }

    /// `0000:12:00.0 [mi300x] on vfio-pci (wants vfio-pci), /dev/vfio/12 1000:993 0660, from amdgpu: settled`.
    var line: String {
        var parts = ["\(address) [\(policy)] on \(driver ?? "no driver")" + (wants.map { " (wants \($0))" } ?? "")]
        if let node { parts.append("node \(node)") }
        if let origin { parts.append("from \(origin)") }
        return parts.joined(separator: ", ") + ": \(state)" + (reason.map { ": \($0)" } ?? "")
    }
}
