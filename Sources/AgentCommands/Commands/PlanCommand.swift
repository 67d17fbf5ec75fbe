import HotplugAgent
import HostInterface
import ArgumentParser
import Policy

struct PlanCommand<Lab: Laboratory>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "plan",
            abstract: "Show, for every PCI device, what reconciling it would do now; change nothing.")
    }

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policy: PolicyOptions
    @OptionGroup var source: HostSourceOptions

    @Flag(help: "One JSON object per device with the same decisions.")
    var json = false

    func run() throws {
        let host = HostContext(global)
        let (reader, accounts) = try source.open(host, lab: Lab.self)
        let policies = try host.policiesOrExit(policy, accounts: accounts)
        let view = try reader.fullViewOrExit()
        let planner = Planner(policies: policies)
        let plans = planner.planAll(in: reader.read(planner.needs(in: view), into: view))
        if json {
            output(PlanJSON(plans).text)
        } else {
            for line in renderPlans(plans) { output(line) }
            // The host's own: ACL entries the agent added that no policy names any more.
            let recorded = IOMMUGrantStore(stateDirectory: host.paths.stateDirectory, root: host.paths.root).load()
            let revoked = policies.iommuRevocations(recorded: recorded)
            if source.file == nil && !revoked.isEmpty { output("/dev/iommu: " + revoked.takeBack) }
        }
    }
}

/// The plan as `plan` and `simulate` print it: a headline per device, a line per decision.
package func renderPlans(_ plans: [DevicePlan]) -> [String] {
    // Names and values come from sysfs, /proc and the policies: one line each stays one line.
    plans.flatMap { plan in [plan.headline] + plan.lines.map { "  " + $0 } }.map(escapingControlCharacters)
}
