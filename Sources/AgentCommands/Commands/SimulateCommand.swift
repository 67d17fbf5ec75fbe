import HotplugAgent
import HostInterface
import ArgumentParser

/// `simulate`: its options here, its work in hotplug-agent-lab (see `Lab`).
package struct SimulateCommand<Lab: Laboratory>: ParsableCommand {
    package static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "simulate",
            abstract: "Reconcile a simulated host built from FILE; print every decision, action and the end state.")
    }

    @OptionGroup package var global: GlobalOptions
    @OptionGroup package var policy: PolicyOptions

    @Option(help: ArgumentHelp("The host description (JSON).", valueName: "FILE"))
    package var host: String

    package init() {}

    package func run() throws {
        try Lab.simulate(self)
    }
}
