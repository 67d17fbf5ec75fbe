import HotplugAgent
import HostInterface
import ArgumentParser

/// `bench`: its options here, its figures in hotplug-agent-lab (see `Lab`).
package struct BenchCommand<Lab: Laboratory>: ParsableCommand {
    package static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "bench", abstract: "Print the agent's performance figures on the simulated host.",
            shouldDisplay: false)
    }

    @Option(help: "Workers for the coldplug figures.")
    package var workers: Int = 16

    @Option(help: "Add/remove cycles for the growth figure.")
    package var cycles: Int = 100_000

    @Option(help: "PFs of 256 VFs each for the large host.")
    package var pfs: Int = 16

    @Option(
        help: ArgumentHelp(
            "Only lay the large host and its policy out under DIR, for `run --root DIR`.", valueName: "DIR"))
    package var writeTree: String?

    @Option(
        help: ArgumentHelp(
            "With --write-tree: lay out this simulated host instead, without policies (run takes --policy-dir).",
            valueName: "FILE"))
    package var host: String?

    @Option(
        help: ArgumentHelp(
            "Only these figures, for a profiler: coldplug (seed 000, instant probes, 20 times), hotplug (100 "
                + "hot-adds), growth (--cycles add/remove cycles on the large host), reconcile (the large host's "
                + "coldplug on one worker) or operations (each kernel operation of one claim and one settled event).",
            valueName: "FIGURE"))
    package var only: [String] = []

    @Option(
        help: ArgumentHelp(
            "Set driverctl, run from this path, against the agent (a private mount namespace: root).", valueName: "PATH"
        ))
    package var driverctl: String?

    package init() {}

    package func run() throws {
        try Lab.bench(self)
    }
}
