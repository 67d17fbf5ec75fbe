import ArgumentParser
import Glibc
import HostInterface
import AgentCommands
import HotplugAgent
import Logging
import Policy
import Simulation

/// What `simulate` does: reconciles the simulated host and prints what the agent found,
/// decided and did, and the end state.
extension SimulateCommand {
    func simulate() throws {
        let (description, kernel) = try loadSimulatedHost(host)
        let paths = HostPaths(root: global.root)
        let accounts = TableAccounts(users: description.users ?? [:], groups: description.groups ?? [:])
        let (policies, errors, _) = PolicyLoader(paths: paths, accounts: accounts).load(directories: policy.chosen)
        guard errors.isEmpty else {
            for error in errors { LineLogHandler.error("\(error)") }
            throw ExitCode(1)
        }
        let reader = SysfsReader(io: kernel, paths: kernel.paths)
        let view = try reader.fullViewOrExit()
        output(
            "== \(escapingControlCharacters(description.name)): \(view.devices.count) PCI devices, "
                + "\(policies.policies.count) policies\n"
        )
        output("== What the agent finds and decides")
        let planner = Planner(policies: policies)
        renderPlans(planner.planAll(in: reader.read(planner.needs(in: view), into: view))).forEach { output($0) }

        output("\n== What it does")
        let log = Logger.lines(level: global.logLevel, sink: LineLogHandler.standardOutput)
        // The simulated host's state lives in a temporary directory: nothing real is touched.
        let state = try temporaryDirectory("hotplug-agent-simulate")
        defer { _ = Subprocess.removeTree(state) }
        let agent = Agent.assemble(
            kernel: kernel, paths: kernel.paths, policies: policies, dryRun: false, log: log,
            bindSettle: .zero, stateDirectory: state)
        let succeeded = agent.runOnce(events: kernel)

        let after = try reader.fullViewOrExit()
        output("\n== End state")
        HostListing(after).text.forEach { output($0) }

        // What the daemon would keep in /var/run/cdi for container runtimes.
        for spec in planner.cdiSpecs(in: reader.read(planner.needs(in: after), into: after)) {
            output("\n== CDI spec /var/run/cdi/\(spec.fileName)")
            output(String(CDISpecFiles.text(spec).dropLast()))
        }

        output("\n== What changed")
        let changes = Self.changes(from: view, to: after)
        changes.forEach { output($0) }
        let moved = after.devices.values.filter { view.devices[$0.address]?.driver != $0.driver }.count
        let bridges = view.devices.values.filter(\.isBridge)
        let bridgesKept = bridges.allSatisfy { after.devices[$0.address]?.driver == $0.driver }
        output(
            "\(moved) devices changed driver, \(bridges.count) bridges \(bridgesKept ? "untouched" : "CHANGED"), "
                + "\(agent.failureCount) reconciles failed")
        if !succeeded { throw ExitCode(1) }
    }

    /// Device by device and node by node, what differs between two views of the host.
    static func changes(from before: HostView, to after: HostView) -> [String] {
        var lines: [String] = []
        for address in Set(before.devices.keys).union(after.devices.keys).sorted() {
            let old = before.devices[address], new = after.devices[address]
            guard old?.driver != new?.driver || old?.driverOverride != new?.driverOverride else { continue }
            let id = (new ?? old).map { "[\($0.id)]" } ?? ""
            lines.append(
                "\(address) \(id): \(old?.driver ?? "no driver") -> \(new?.driver ?? "no driver")"
                    + (new?.driverOverride.map { " (override \($0))" } ?? ""))
        }
        for group in Set(before.vfioNodes.keys).union(after.vfioNodes.keys).sorted() {
            let old = before.vfioNodes[group], new = after.vfioNodes[group]
            guard old != new else { continue }
            lines.append("/dev/vfio/\(group): \(old?.description ?? "absent") -> \(new?.description ?? "absent")")
        }
        // Driver names come from the host description: one line each stays one line.
        return lines.map(escapingControlCharacters)
    }
}
