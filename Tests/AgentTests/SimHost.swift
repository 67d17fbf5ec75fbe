import Foundation
import HostInterface
@testable import AgentCommands
@testable import HotplugAgent
@testable import Simulation
import Logging
import Policy
import Synchronization
import Testing

/// The repository, for the shipped host descriptions and example policies.
let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Collects log lines from any thread.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    func containing(_ text: String) -> [String] { all.filter { $0.contains(text) } }
}

/// A seed machine on the simulated kernel, with the real agent stack on top of it.
final class SimHost {
    let description: HostDescription
    let kernel: SimulatedKernel
    let agent: Agent
    let log = LogLines()
    /// A temporary state directory, removed with the host.
    let state: String

    convenience init(_ hostFile: String, policies toml: String, dryRun: Bool = false) throws {
        try self.init(try Self.load(hostFile), policies: toml, dryRun: dryRun)
    }

    static func load(_ hostFile: String) throws -> HostDescription {
        let data = try Data(contentsOf: repository.appendingPathComponent("hosts/\(hostFile)"))
        return try JSONDecoder().decode(HostDescription.self, from: data)
    }

    init(
        _ description: HostDescription, policies toml: String, dryRun: Bool = false, stuckAfter: Duration = .seconds(30)
    ) throws {
        self.description = description
        kernel = try SimulatedKernel(description)
        let accounts = TableAccounts(users: description.users ?? [:], groups: description.groups ?? [:])
        let parsed = PolicyParser(accounts: accounts).parse(toml, file: "test.toml")
        guard parsed.errors.isEmpty else { throw SimulationError.invalid("\(parsed.errors)") }
        let sink = log
        var template = Array("/tmp/hotplug-agent-state.XXXXXX".utf8CString)
        state = String(cString: mkdtemp(&template)!)
        agent = Agent.assemble(
            kernel: kernel, paths: kernel.paths, policies: PolicySet(parsed.policies), dryRun: dryRun,
            log: .lines(level: .debug) { sink.append($0) }, bindSettle: .zero, stateDirectory: state,
            stuckAfter: stuckAfter)
    }

    deinit { try? FileManager.default.removeItem(atPath: state) }

    /// A fresh agent on the same kernel and state directory, as after a restart.
    func restarted(policies toml: String, dryRun: Bool = false) throws -> Agent {
        let accounts = TableAccounts(users: description.users ?? [:], groups: description.groups ?? [:])
        let parsed = PolicyParser(accounts: accounts).parse(toml, file: "test.toml")
        let sink = log
        return Agent.assemble(
            kernel: kernel, paths: kernel.paths, policies: PolicySet(parsed.policies), dryRun: dryRun,
            log: .lines(level: .debug) { sink.append($0) }, bindSettle: .zero, stateDirectory: state)
    }

    /// The example policy shipped for a seed, as an admin would install it.
    static func examplePolicy(_ seed: String) throws -> String {
        let directory = repository.appendingPathComponent("rules/examples/\(seed)")
        return try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
            .map { try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8) }.joined(
                separator: "\n")
    }

    func runOnce() -> Bool { agent.runOnce(events: kernel) }

    /// The agent's own reader and an executor over the simulated kernel, for tests that
    /// drive one layer directly.
    var reader: SysfsReader { agent.reader }
    var executor: Executor { Executor(io: kernel, paths: kernel.paths, reader: reader, bindSettle: .zero) }

    /// The plan lines `plan` would print for this host now.
    func planLines() throws -> [String] {
        renderPlans(agent.planner.planAll(in: try agent.plannedView()))
    }

    /// Delivers every queued uevent to the agent, as the daemon loop does.
    func deliverEvents() { agent.handle(kernel.drain()) }

    func device(_ address: String) -> SimulatedState.Device? {
        kernel.inspect { $0.devices[PCIAddress(address)!] }
    }

    func node(_ group: Int) -> SimulatedState.Node? { kernel.inspect { $0.nodes[group] } }

    /// The device at `address` as the host description lays it out.
    func described(_ address: String) throws -> HostDescription.Device {
        try #require(description.devices.first { $0.address == address })
    }

    /// Plugs the device at `address` in again as the host description lays it out.
    func plugAgain(_ address: String) throws { try kernel.plug(try described(address)) }

    /// A second agent on this host and state (this one's policies unless `policies`), whose
    /// kernel operations are counted and kept in order.
    func countingAgent(workers: Int = 1, policies: PolicySet? = nil) -> (Agent, CountingKernelIO) {
        let counting = CountingKernelIO(kernel)
        counting.keepJournal()
        let agent = Agent.assemble(
            kernel: counting, paths: kernel.paths, policies: policies ?? self.agent.reconciler.planner.policies,
            dryRun: false, log: .lines(level: .critical) { _ in }, bindSettle: .zero, stateDirectory: state,
            workers: workers)
        return (agent, counting)
    }
    var history: [String] { kernel.inspect(\.history) }
    /// The names in the agent's origin records directory, sorted; none while it is missing.
    var originRecords: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: state + "/origins")) ?? []).sorted()
    }

    func addresses(where predicate: (SimulatedState.Device) -> Bool) -> [String] {
        kernel.inspect { $0.devices.values.filter(predicate).map(\.address.description).sorted() }
    }
}
