import ArgumentParser
import Foundation
import Glibc
import Logging
import Policy

/// `make bench`: the agent's figures on the simulated host, each beside its goal. Wall
/// time, process CPU (agent and simulated kernel together) and resident memory.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Print the agent's performance figures on the simulated host.",
                                                    shouldDisplay: false)

    @Option(help: "Workers for the coldplug figures.")
    var workers: Int = 16

    @Option(help: "Add/remove cycles for the growth figure.")
    var cycles: Int = 10_000

    @Option(help: "PFs of 256 VFs each for the large host.")
    var pfs: Int = 16

    func run() throws {
        let startRSS = residentKiB()
        output("hotplug-agent benchmarks: \(ProcessInfo.processInfo.activeProcessorCount) cores, simulated host")
        try coldplugWithSlowProbes()
        let (kernel, agent, state) = try bigHost()
        defer { _ = Subprocess.removeTree(state) }
        let host = (kernel: kernel, agent: agent)
        try coldplug4096(host)
        try eventRate(host)
        try operationCounts(host, policies: bigHostPolicies)
        output(String(format: "resident memory, 4096 devices known:       %6.1f MiB (at start %.1f MiB; goal <= 12 MiB)",
                      Double(residentKiB()) / 1024, Double(startRSS) / 1024))
        try growth(host)
    }

    /// Seed 000's 16 devices, each probe taking 100 ms.
    private func coldplugWithSlowProbes() throws {
        let description = try JSONDecoder().decode(HostDescription.self, from: Data(contentsOf: URL(fileURLWithPath: "hosts/seed-000-mi300x.json")))
        let kernel = try SimulatedKernel(description)
        try kernel.loadModule("vfio-pci")
        kernel.probeTime.withLock { $0 = .milliseconds(100) }
        let policies = Self.policies("""
            [[policy]]
            name = "gpus-and-nics"
            match.ids = ["1002:74a1", "15b3:1021"]
            driver = "vfio-pci"
            owner = "1000"
            """)
        let agent = Agent.assemble(kernel: kernel, paths: kernel.paths, policies: policies, dryRun: false, log: Self.quiet,
                                   bindSettle: .zero, workers: workers)
        let (wall, _) = measure { _ = agent.runOnce(events: kernel) }
        let claimed = kernel.inspect { $0.devices.values.filter { $0.driver == "vfio-pci" }.count }
        output(String(format: "coldplug, 16 devices, 100 ms probes:      %6.3f s wall, %d workers (%d claimed; serial 1.6 s; goal <= 0.3 s)",
                      wall, workers, claimed))
    }

    /// 16 PFs with 256 VFs each, made before the agent starts: 4112 PCI functions.
    /// The host, its agent, and the agent's temporary state directory.
    private func bigHost() throws -> (kernel: SimulatedKernel, agent: Agent, state: String) {
        var devices: [HostDescription.Device] = []
        for index in 0..<pfs {
            let rootPort = "0000:00:\(hex(index + 1, width: 2)).0"
            devices.append(HostDescription.Device(address: rootPort, id: "8086:352a", subsystem: nil, class: "060400", parent: nil,
                                                  iommuGroup: index, driver: "pcieport", bootVGA: nil, attributes: nil))
            var pf = HostDescription.Device(address: "0000:\(hex(0x10 + 2 * index, width: 2)):00.0", id: "8086:56c0", subsystem: "8086:4905",
                                            class: "038000", parent: rootPort, iommuGroup: 100 + index, driver: "i915", bootVGA: nil, attributes: nil)
            pf.sriov = HostDescription.SRIOV(totalVFs: 256, offset: 1, stride: 1, vfDevice: "56c0", autoprobe: false, pfAttributes: nil)
            devices.append(pf)
        }
        let description = HostDescription(name: "16 PFs x 256 VFs", users: [:], groups: [:], drivers: [
            HostDescription.Driver(name: "pcieport", module: nil, loaded: true, loadable: true, ids: nil, classes: ["0604"], sriov: nil),
            HostDescription.Driver(name: "i915", module: nil, loaded: true, loadable: true, ids: ["8086:56c0"], classes: nil, sriov: true),
            HostDescription.Driver(name: "vfio-pci", module: nil, loaded: true, loadable: true, ids: nil, classes: nil, sriov: nil),
        ], devices: devices)
        let kernel = try SimulatedKernel(description)
        for index in 0..<pfs { try kernel.write("/sys/bus/pci/devices/0000:\(hex(0x10 + 2 * index, width: 2)):00.0/sriov_numvfs", "256") }
        _ = kernel.drain()
        let policies = bigHostPolicies
        var template = Array("/tmp/hotplug-agent-bench.XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw ExitCode(1) }
        let state = String(cString: template)
        let agent = Agent.assemble(kernel: kernel, paths: kernel.paths, policies: policies, dryRun: false, log: Self.quiet,
                                   bindSettle: .zero, stateDirectory: state, workers: workers)
        return (kernel, agent, state)
    }

    private func coldplug4096(_ host: (kernel: SimulatedKernel, agent: Agent)) throws {
        let (wall, cpu) = measure { _ = host.agent.runOnce(events: host.kernel) }
        let claimed = host.kernel.inspect { $0.devices.values.filter { $0.driver == "vfio-pci" }.count }
        output(String(format: "coldplug, 4096 VFs of 16 PFs:             %6.0f ms CPU, %.2f s wall (%d claimed; goal <= 100 ms CPU)",
                      cpu * 1000, wall, claimed))
        output(String(format: "CPU per device reconcile:                 %6.1f us (decision, actions, simulated writes; goal <= 20 us)",
                      cpu * 1_000_000 / Double(max(1, claimed))))
    }

    /// Events for devices that are settled: each one read, decided, nothing to do.
    private func eventRate(_ host: (kernel: SimulatedKernel, agent: Agent)) throws {
        let addresses = host.kernel.inspect { $0.devices.keys.filter { $0.function != 0 || $0.device != 0 } }.sorted()
        let events = addresses.map { UEvent(action: "change", subsystem: "pci", devpath: "/devices/\($0)", properties: ["PCI_SLOT_NAME": $0.description]) }
        let (wall, cpu) = measure { host.agent.handle((events, false)) }
        output(String(format: "events through the decision path:      %8.0f events/s (%d events, %.0f ms CPU; goal >= 50,000)",
                      Double(events.count) / wall, events.count, cpu * 1000))
    }

    private var bigHostPolicies: PolicySet {
        Self.policies("""
            [[policy]]
            name = "vfs"
            match.pf-ids = ["8086:56c0"]
            driver = "vfio-pci"
            owner = "1000"
            mode = "0660"

            [[policy]]
            name = "hotplugged"
            match.ids = ["8086:56c1"]
            driver = "vfio-pci"
            owner = "1000"
            mode = "0660"
            """)
    }

    /// Kernel operations (reads, writes, links, stats …) the agent makes to claim a device
    /// that arrives, and to confirm one that is settled: work not repeated shows here first.
    private func operationCounts(_ host: (kernel: SimulatedKernel, agent: Agent), policies: PolicySet) throws {
        let counting = CountingKernelIO(host.kernel)
        var template = Array("/tmp/hotplug-agent-bench.XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw ExitCode(1) }
        let state = String(cString: template)
        defer { _ = Subprocess.removeTree(state) }
        let agent = Agent.assemble(kernel: counting, paths: host.kernel.paths, policies: policies, dryRun: false, log: Self.quiet,
                                   bindSettle: .zero, stateDirectory: state, workers: 1)
        let address = PCIAddress("0000:10:00.2")!
        host.kernel.unplug(address)
        try host.kernel.plug(HostDescription.Device(address: address.description, id: "8086:56c1", subsystem: nil, class: "038000",
                                                    parent: "0000:00:01.0", iommuGroup: 9998, driver: nil, bootVGA: nil, attributes: nil))
        let events = host.kernel.drain()
        counting.reset()
        agent.handle(events)
        let claim = counting.tally
        counting.reset()
        agent.handle(([UEvent(action: "change", subsystem: "pci", devpath: "/devices/\(address)", properties: ["PCI_SLOT_NAME": address.description])], false))
        let settled = counting.tally
        func line(_ tally: [String: Int]) -> String {
            "\(tally.values.reduce(0, +)) (" + tally.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ") + ")"
        }
        output("kernel operations, a device that arrives:  \(line(claim))")
        output("kernel operations, event, settled device:  \(line(settled))")
    }

    /// A device unplugged and plugged again, each time claimed again.
    private func growth(_ host: (kernel: SimulatedKernel, agent: Agent)) throws {
        let address = PCIAddress("0000:10:00.1")!
        func cycle() {
            host.kernel.unplug(address)
            host.agent.handle(host.kernel.drain())
            try? host.kernel.plug(HostDescription.Device(address: address.description, id: "8086:56c1", subsystem: nil, class: "038000",
                                                          parent: "0000:00:01.0", iommuGroup: 9999, driver: nil, bootVGA: nil, attributes: nil))
            host.agent.handle(host.kernel.drain())
        }
        for _ in 0..<200 { cycle() }
        let before = residentKiB()
        let (wall, _) = measure { for _ in 0..<cycles { cycle() } }
        let after = residentKiB()
        let claimed = host.kernel.inspect { $0.devices[address]?.driver == "vfio-pci" }
        output(String(format: "growth after %d add/remove cycles:     %6d KiB (%.0f cycles/s, %@; goal: none)", cycles, after - before,
                      Double(cycles) / wall, claimed ? "claimed each time" : "NOT CLAIMED"))
    }

    static let quiet = Logger.lines(level: .critical) { _ in }

    static func policies(_ toml: String) -> PolicySet {
        PolicySet(PolicyParser(accounts: TableAccounts(users: [:], groups: [:])).parse(toml, file: "bench.toml").policies)
    }
}

/// Wall seconds and process CPU seconds (all threads) that `body` took.
func measure(_ body: () -> Void) -> (wall: Double, cpu: Double) {
    func cpu() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
    let start = ContinuousClock.now, startCPU = cpu()
    body()
    let elapsed = ContinuousClock.now - start
    return (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, cpu() - startCPU)
}

/// VmRSS of this process.
func residentKiB() -> Int {
    let status = (try? readTextFile("/proc/self/status")) ?? ""
    return status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        .flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) } ?? 0
}
