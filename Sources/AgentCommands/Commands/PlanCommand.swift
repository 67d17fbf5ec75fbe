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
        let chosen = try ChosenHost(global, policy, source, lab: Lab.self)
        let host = chosen.context, policies = chosen.policies
        let plans = chosen.planner.planAll(in: try chosen.plannedView())
        if json {
            output(PlanJSON(plans).text)
        } else {
            for line in renderPlans(plans) { output(line) }
            // The host's own: ACL entries the agent added that no policy names any more.
            let recorded = IOMMUGrantStore(stateDirectory: host.paths.stateDirectory, root: host.paths.root).load()
            let revoked = policies.iommuRevocations(recorded: recorded)
            if !chosen.simulated && !revoked.isEmpty { output("/dev/iommu: " + revoked.takeBack) }
        }
    }
}

/// The plan as `plan` and `simulate` print it: a headline per device, a line per decision.
package func renderPlans(_ plans: [DevicePlan]) -> [String] {
    // Names and values come from sysfs, /proc and the policies: one line each stays one line.
    plans.flatMap { plan in [plan.headline] + plan.lines.map { "  " + $0 } }.map(escapingControlCharacters)
}
