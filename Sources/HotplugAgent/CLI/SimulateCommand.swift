import ArgumentParser
import Foundation
import Logging
import Policy

struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Reconcile a simulated host built from FILE; print every decision, action and the end state.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policy: PolicyOptions

    @Option(help: ArgumentHelp("The host description (JSON).", valueName: "FILE"))
    var host: String

    func run() throws {
        let description: HostDescription
        let kernel: SimulatedKernel
        do {
            description = try JSONDecoder().decode(HostDescription.self, from: Data(contentsOf: URL(fileURLWithPath: host)))
            kernel = try SimulatedKernel(description)
        } catch {
            LineLogHandler.standardError("hotplug-agent: \(host): \(error)")
            throw ExitCode(1)
        }
        let paths = HostPaths(root: global.root)
        let accounts = TableAccounts(users: description.users ?? [:], groups: description.groups ?? [:])
        let (policies, errors) = PolicyLoader(paths: paths, accounts: accounts).load(directories: policy.chosen)
        guard errors.isEmpty else {
            for error in errors { LineLogHandler.standardError("\(error)") }
            throw ExitCode(1)
        }
        let reader = SysfsReader(io: kernel, paths: kernel.paths)
        let view = try readOrExit(reader)
        output("== \(description.name): \(view.devices.count) PCI devices, \(policies.policies.count) policies\n")
        output("== What the agent finds and decides")
        renderPlans(Planner(policies: policies).planAll(in: view)).forEach { output($0) }

        output("\n== What it does")
        let log = Logger.lines(level: global.logLevel, sink: LineLogHandler.standardOutput)
        let agent = Agent.assemble(kernel: kernel, paths: kernel.paths, policies: policies, dryRun: false, log: log, bindSettle: .zero)
        let succeeded = agent.runOnce(events: kernel)

        output("\n== End state")
        HostListing(try readOrExit(reader)).text.forEach { output($0) }
        if !succeeded { throw ExitCode(1) }
    }

    private func readOrExit(_ reader: SysfsReader) throws -> HostView {
        do { return try reader.fullView() } catch {
            LineLogHandler.standardError("hotplug-agent: cannot read the simulated host: \(error)")
            throw ExitCode(1)
        }
    }
}
