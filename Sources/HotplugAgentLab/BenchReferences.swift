import ArgumentParser
import Glibc
import HostInterface
import AgentCommands
import HotplugAgent
import Policy
import Simulation
import Synchronization

/// The bench's figures set against references on the same simulated kernel: the bare
/// writes the same claims need (what a script that knows the answers would issue), from
/// one thread or from one thread per device, and hot-add latency beside the kernel's share.
extension BenchCommand {
    static var seed000: String { "hosts/seed-000-mi300x.json" }
    static var seed000Policy: String {
        """
        [[policy]]
        name = "gpus-and-nics"
        match.ids = ["1002:74a1", "15b3:1021"]
        driver = "vfio-pci"
        owner = "1000"
        mode = "0660"
        """
    }

    /// Seed 000 with vfio-pci loaded and probes taking `probe`; the 16 devices to claim.
    static func seed000Host(
        probe: Duration
    ) throws -> (description: HostDescription, kernel: SimulatedKernel, targets: [PCIAddress]) {
        let (description, kernel) = try loadSimulatedHost(seed000)
        try kernel.loadModule("vfio-pci")
        kernel.probeTime.withLock { $0 = probe }
        let targets = description.devices.filter { ["1002:74a1", "15b3:1021"].contains($0.id) }.compactMap {
            PCIAddress($0.address)
        }
        return (description, kernel, targets.sorted())
    }


    /// Coldplug of seed 000's 16 devices with instant probes: the agent against the bare
    /// writes of the same claims from one thread; the median of 20 fresh hosts each. Beside
    /// them the floor of any coldplug that decides from what it reads: one look at every
    /// device, with what the policy needs, and nothing decided nor written. Returns the
    /// agent's.
    @discardableResult
    func coldplugAgainstBareWrites() throws -> Double {
        var agentTimes: [Double] = [], bareTimes: [Double] = [], lookTimes: [Double] = []
        for _ in 0..<20 {
            let assemble = { (kernel: SimulatedKernel) in
                Agent.assemble(
                    kernel: kernel, paths: kernel.paths, policies: Self.policies(Self.seed000Policy),
                    dryRun: false, log: Self.quiet, bindSettle: .zero, workers: workers)
            }
            let (_, kernel, _) = try Self.seed000Host(probe: .zero)
            let agent = assemble(kernel)
            agentTimes.append(measure { _ = agent.runOnce(events: kernel) }.wall)
            let (_, looked, _) = try Self.seed000Host(probe: .zero)
            let onlyLooking = assemble(looked)
            var view: HostView?
            lookTimes.append(measure { view = try? onlyLooking.plannedView() }.wall)
            guard view?.devices.count == 56 else { throw ValidationError("seed 000 did not read as 56 devices") }
            let (_, bare, targets) = try Self.seed000Host(probe: .zero)
            var failed: (any Error)?
            bareTimes.append(
                measure {
                    do { for address in targets { try bareClaim(bare, address) } } catch { failed = error }
                }.wall)
            if let failed { throw failed }
        }
        let (mine, bare, look) = (median(agentTimes), median(bareTimes), median(lookTimes))
        figure(
            "coldplug, 16 devices, instant probes", "\(fixed(mine * 1000, 2)) ms wall",
            "bare writes \(fixed(bare * 1000, 2)) ms from one thread: \(fixed(mine / bare, 1))x; goal <= 1.5x; "
                + "one look at the 56 devices alone \(fixed(look * 1000, 2)) ms, \(fixed(look / bare, 1))x")
        return mine
    }

    /// The same with probes of 100 ms: the agent against one thread per device issuing the
    /// bare writes (the best a parallel script can do).
    func slowProbesAgainstParallelWrites() throws {
        let (_, kernel, _) = try Self.seed000Host(probe: .milliseconds(100))
        let agent = Agent.assemble(
            kernel: kernel, paths: kernel.paths, policies: Self.policies(Self.seed000Policy), dryRun: false,
            log: Self.quiet, bindSettle: .zero, workers: workers)
        let mine = measure { _ = agent.runOnce(events: kernel) }.wall
        let (_, bare, targets) = try Self.seed000Host(probe: .milliseconds(100))
        let lock = ConditionLock()
        nonisolated(unsafe) var finished = 0, failures = 0
        let parallel = measure {
            for address in targets {
                startThread {
                    let failed = (try? bareClaim(bare, address)) == nil
                    lock.locked {
                        finished += 1; if failed { failures += 1 }
                    }
                    lock.broadcast()
                }
            }
            lock.locked { while finished < targets.count { lock.wait() } }
        }.wall
        guard failures == 0 else { throw ExitCode(1) }
        figure(
            "coldplug, 16 devices, 100 ms probes", "\(fixed(mine, 3)) s wall",
            "bare writes from 16 threads \(fixed(parallel, 3)) s: \(fixed(mine / parallel, 2))x; goal <= 1.2x")
    }

    /// 100 hot-adds of a GPU on seed 000: from the kernel's `add` to the device on vfio-pci
    /// with its node owned, through the agent's event handling; beside it, the bare writes
    /// of that claim on the same simulated kernel (its share of the time).
    func hotplugLatency() throws {
        let (description, kernel, targets) = try Self.seed000Host(probe: .zero)
        let agent = Agent.assemble(
            kernel: kernel, paths: kernel.paths, policies: Self.policies(Self.seed000Policy), dryRun: false,
            log: Self.quiet, bindSettle: .zero, workers: workers)
        _ = agent.runOnce(events: kernel)
        let address = targets[0]
        let card = description.devices.first { $0.address == "\(address)" }!
        let group = card.iommuGroup.map { "/dev/vfio/\($0)" } ?? ""
        var latencies: [Double] = [], kernelShare: [Double] = []
        for _ in 0..<100 {
            kernel.unplug(address)
            agent.handle(kernel.drain())
            try kernel.plug(card)
            latencies.append(
                measure {
                    while !(kernel.inspect { $0.devices[address]?.driver == "vfio-pci" }
                        && (try? kernel.nodeState(group))??.uid == 1000)
                    {
                        agent.handle(kernel.drain())
                    }
                }.wall)
            kernel.unplug(address)
            agent.handle(kernel.drain())
            try kernel.plug(card)
            _ = kernel.drain()
            kernelShare.append(measure { try? bareClaim(kernel, address) }.wall)
            agent.handle(kernel.drain())
        }
        latencies.sort()
        kernelShare.sort()
        figure(
            "hot-add to vfio-pci with its node owned", "\(fixed(latencies[49] * 1000, 2)) ms p50",
            "p99 \(fixed(latencies[98] * 1000, 2)) ms over 100; the bare writes alone p50 "
                + "\(fixed(kernelShare[49] * 1000, 3)) ms; goal p50 <= 20 ms, p99 <= 50 ms"
        )
    }
}

/// The middle one of `values` (the upper of the two middle ones for an even count).
func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

/// Hands `agent` the kernel's events until a drain finds none: those its own steps cause
/// come after the batch that asked for them. Returns how many it handed in.
@discardableResult
func handleUntilQuiet(_ agent: Agent, _ kernel: SimulatedKernel) -> Int {
    var events = kernel.drain(), count = 0
    while !events.events.isEmpty {
        count += events.events.count
        agent.handle(events)
        events = kernel.drain()
    }
    return count
}

/// One claim as bare writes: override, unbind, probe, the node's owner and mode.
func bareClaim(_ kernel: SimulatedKernel, _ address: PCIAddress) throws {
    let device = "/sys/bus/pci/devices/\(address)"
    try kernel.write(device + "/driver_override", "vfio-pci")
    if let driver = (try? kernel.readLink(device + "/driver")).flatMap(lastComponent) {
        try kernel.write("/sys/bus/pci/drivers/\(driver)/unbind", "\(address)")
    }
    try kernel.write("/sys/bus/pci/drivers_probe", "\(address)")
    let group = lastComponent(try kernel.readLink(device + "/iommu_group")) ?? ""
    try kernel.setNodeAccess("/dev/vfio/\(group)", uid: 1000, gid: nil, mode: 0o660)
}
