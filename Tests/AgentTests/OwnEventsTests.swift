import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Policy
import Testing
import TestSupport

/// The events of the agent's own binds and unbinds start a reconcile from the view the last
/// one settled on, with the group's node looked at again; any other event looks afresh.
struct OwnEventsTests {
    let gpus = """
        [[policy]]
        name = "gpus"
        match.ids = ["1002:74a1"]
        driver = "vfio-pci"
        owner = "cloud"
        mode = "0660"
        """
    let gpu = PCIAddress("0000:12:00.0")!

    /// Seed 000 settled, its GPU at 12:00.0 plugged again into a counting agent and claimed;
    /// the claim's kernel operations, and its events left to hand in.
    func claimedAgain() throws -> (SimHost, Agent, CountingKernelIO, claim: [String]) {
        let host = try SimHost("seed-000-mi300x.json", policies: gpus)
        #expect(host.runOnce())
        _ = host.kernel.drain()
        let (agent, counting) = host.countingAgent()
        host.kernel.unplug(gpu)
        agent.handle(host.kernel.drain())
        try host.plugAgain(gpu.description)
        counting.reset()
        agent.handle(host.kernel.drain())
        #expect(host.device(gpu.description)?.driver == "vfio-pci" && host.node(12)?.uid == 1000)
        let claim = counting.operations
        counting.reset()
        return (host, agent, counting, claim)
    }

    /// A claim is confirmed from its steps, each verified as it was done: after them only
    /// what the kernel makes on the bind is read (the device's `vfio-dev/`), never the node
    /// it has just owned nor the device's driver link and override again; the events of
    /// its own writes then look at its group's node again, not at the device.
    @Test func aClaimIsConfirmedFromItsVerifiedStepsAndItsOwnEventsLookAtTheNode() throws {
        let (host, agent, counting, claim) = try claimedAgain()
        let chown = try #require(claim.firstIndex { $0.hasPrefix("chown ") && $0.hasSuffix("/dev/vfio/12") })
        let after = claim[(chown + 1)...]
        #expect(!after.contains { $0.hasSuffix("/dev/vfio/12") }, "\(claim)")
        #expect(after.filter { $0.hasPrefix("dirread ") }.count == 1, "\(claim)")
        // Its own events (bind, the group node's add) look at the node again (udev may have
        // set it since), not at the device.
        let events = host.kernel.drain()
        #expect(Set(events.events.map { "\($0.subsystem) \($0.action)" }) == ["pci bind", "vfio add"])
        agent.handle(events)
        #expect(counting.operations.contains { $0.hasPrefix("stat ") && $0.hasSuffix("/dev/vfio/12") })
        #expect(!counting.operations.contains { $0.hasPrefix("dirread ") }, "\(counting.operations)")
        #expect(counting.operations.filter { $0.hasPrefix("write ") }.isEmpty)
        // Nor for /dev/iommu, which the claim found this kernel does not have.
        #expect(claim.contains { $0.hasSuffix("/dev/iommu") } && host.kernel.inspect { $0.iommu == nil })
        #expect(!counting.operations.contains { $0.hasSuffix("/dev/iommu") }, "\(counting.operations)")
    }

    /// udev handles the node's `add` after the agent owned the node, and may apply a rule
    /// of its own (root, 0600 here): the node's event puts the policy's owner back.
    @Test func theNodesOwnEventPutsBackWhatUdevReset() throws {
        let (host, agent, counting, _) = try claimedAgain()
        try host.kernel.setNodeAccess(host.kernel.paths.vfioNode(12), uid: 0, gid: 0, mode: 0o600)
        agent.handle(host.kernel.drain())
        #expect(host.node(12)?.uid == 1000 && host.node(12)?.mode == 0o660)
        // Decided without a look at the device (its confirmation reads `vfio-dev/` after).
        let operations = counting.operations
        let chown = try #require(operations.firstIndex { $0.hasPrefix("chown ") && $0.hasSuffix("/dev/vfio/12") })
        #expect(!operations[..<chown].contains { $0.hasPrefix("dirread ") }, "\(operations)")
    }

    /// An unbind by hand once the claim's own events came: no step of the agent's accounts
    /// for it, so the device is looked at afresh and claimed again, never taken as settled
    /// from the view the claim left.
    @Test func anUnbindByHandIsLookedAtAfresh() throws {
        let (host, agent, counting, _) = try claimedAgain()
        agent.handle(host.kernel.drain())
        #expect(agent.reconciler.own.count == 0, "kept only until the claim's own events came")
        try host.kernel.write(host.kernel.paths.driver("vfio-pci") + "/unbind", gpu.description)
        #expect(host.device(gpu.description)?.driver == nil)
        counting.reset()
        agent.handle(host.kernel.drain())
        #expect(counting.operations.contains { $0.hasPrefix("dirread ") && $0.hasSuffix(gpu.description) })
        #expect(host.device(gpu.description)?.driver == "vfio-pci" && host.node(12)?.uid == 1000)
    }

    /// The view a claim left is overtaken by events not yet handed in: the GPU was unbound
    /// by hand, and its device node's number went to a NIC bound by hand. What the view
    /// plans (owning the GPU's old node) fails, and the GPU is reconciled afresh at once,
    /// never recorded as failed (which would keep it from being retried).
    @Test func aViewOvertakenByEventsNotYetHandedInIsReconciledAfresh() throws {
        var description = try SimHost.load("seed-000-mi300x.json")
        description.vfioDeviceNodes = true
        let host = try SimHost(description, policies: gpus)
        #expect(host.runOnce())
        _ = host.kernel.drain()
        let nic = PCIAddress("0000:13:00.0")!
        host.kernel.unplug(gpu)
        host.agent.handle(host.kernel.drain())
        try host.plugAgain(gpu.description)
        host.agent.handle(host.kernel.drain())
        let number = try #require(host.kernel.inspect { $0.devices[gpu]?.deviceNode })
        let own = host.kernel.drain()
        try host.kernel.write(host.kernel.paths.driver("vfio-pci") + "/unbind", gpu.description)
        try host.kernel.write(host.kernel.paths.attribute(nic, "driver_override"), "vfio-pci")
        try host.kernel.write(host.kernel.paths.driver("mlx5_core") + "/unbind", nic.description)
        try host.kernel.write(host.kernel.paths.driversProbe, nic.description)
        #expect(host.kernel.inspect { $0.devices[nic]?.deviceNode } == number)
        let foreign = host.kernel.drain()
        host.agent.handle(own)
        host.agent.handle(foreign)
        #expect(host.device(gpu.description)?.driver == "vfio-pci")
        let node = try #require(
            host.kernel.inspect { state in state.devices[gpu]?.deviceNode.flatMap { state.deviceNodes[$0] } })
        #expect(node.uid == 1000)
        #expect(host.kernel.inspect { $0.deviceNodes[number]?.uid } == 0, "the NIC's node is not the GPU's owner's")
        #expect(host.agent.failureCount == 0)
    }

    /// A kept view's IOMMU group peers may have moved since (by their own reconciles, or
    /// by hand): a reconcile that starts from it reads them again, and the group's node.
    @Test func aReconcileFromAKeptViewReadsItsGroupPeersAgain() throws {
        let host = try SimHost("seed-001-fiji.json", policies: "")
        let gpu = PCIAddress("0000:0b:00.0")!, audio = PCIAddress("0000:0b:00.1")!
        let kept = try host.agent.reader.view(around: [gpu])
        #expect(kept.devices[audio]?.driver == "snd_hda_intel" && kept.vfioNodes[5] == nil)
        try host.kernel.loadModule("vfio-pci")
        try host.kernel.write(host.kernel.paths.attribute(audio, "driver_override"), "vfio-pci")
        try host.kernel.write(host.kernel.paths.driver("snd_hda_intel") + "/unbind", audio.description)
        try host.kernel.write(host.kernel.paths.driversProbe, audio.description)
        let view = try host.agent.reader.refreshingGroup(of: gpu, in: kept)
        #expect(view.devices[audio]?.driver == "vfio-pci" && view.vfioNodes[5] != nil)
        #expect(view.devices[gpu] == kept.devices[gpu] && view.devices.count == kept.devices.count)
    }

    /// The PCI events of a step come in the order it causes them: a bind whose unbind did
    /// not come first is not taken as its own (nor is the unbind left to match someone
    /// else's later).
    @Test func ownEventsAreMatchedInTheOrderTheStepsCauseThem() {
        let own = OwnEvents()
        own.expect(gpu, Step(.bind(driver: "vfio-pci", from: "amdgpu"), reason: "test"))
        own.settled(gpu, on: HostView(devices: [], drivers: [], vfioNodes: [:]))
        let bind = UEvent(
            action: "bind", subsystem: "pci", devpath: "/devices/\(gpu)", properties: ["DRIVER": "vfio-pci"])
        #expect(!own.take(bind, for: gpu))
        #expect(own.count == 0)
    }

    /// The promise attacked at random: whatever the order in which the agent's own events
    /// and others' changes (an unbind or a bind by hand, a GPU unplugged and plugged again,
    /// udev's rule applied to a new node before its `add` reaches the agent) arrive, and
    /// however the events fall into batches (kept back and handed in later, in order), every
    /// GPU ends on vfio-pci with its node the policy's, and nothing is recorded as failed.
    @Test(arguments: 0..<12 as Range<UInt64>)
    func anyInterleavingOfOwnAndOthersEventsConverges(seed: UInt64) throws {
        var random = SeededGenerator(seed: seed)
        let host = try SimHost("seed-000-mi300x.json", policies: gpus)
        #expect(host.runOnce())
        let paths = host.kernel.paths
        let all = host.addresses { $0.id.device == 0x74a1 }.compactMap(PCIAddress.init)
        var pending = host.kernel.drain().events, unplugged = Set<PCIAddress>()
        for _ in 0..<80 {
            let gpu = all.randomElement(using: &random)!
            let driver = host.kernel.inspect { $0.devices[gpu]?.driver }
            switch random.next() % 5 {
            case 0 where !unplugged.contains(gpu) && driver == "vfio-pci":
                try host.kernel.write(paths.driver("vfio-pci") + "/unbind", gpu.description)
            case 1 where !unplugged.contains(gpu) && driver == nil:
                try host.kernel.write(paths.attribute(gpu, "driver_override"), "vfio-pci")
                try host.kernel.write(paths.driversProbe, gpu.description)
            case 2 where unplugged.contains(gpu):
                try host.plugAgain(gpu.description)
                unplugged.remove(gpu)
            case 2:
                host.kernel.unplug(gpu)
                unplugged.insert(gpu)
            case 3:
                // udev handles a node's `add` (and applies its own rule) before the agent hears of it.
                for event in pending where event.subsystem == "vfio" && event.action == "add" {
                    guard case .group(let group) = event.target, host.node(group) != nil else { continue }
                    try host.kernel.setNodeAccess(paths.vfioNode(group), uid: 0, gid: 0, mode: 0o600)
                }
            default:
                break
            }
            pending += host.kernel.drain().events
            let count = Int(random.next() % UInt64(pending.count + 1))
            host.agent.handle((Array(pending.prefix(count)), false))
            pending.removeFirst(count)
            pending += host.kernel.drain().events
        }
        for gpu in unplugged {
            try host.plugAgain(gpu.description)
        }
        pending += host.kernel.drain().events
        while !pending.isEmpty {
            host.agent.handle((pending, false))
            pending = host.kernel.drain().events
        }
        for gpu in all {
            let device = try #require(host.kernel.inspect { $0.devices[gpu] })
            let node = device.group.flatMap { host.node($0) }
            #expect(device.driver == "vfio-pci" && node?.uid == 1000 && node?.mode == 0o660, "seed \(seed): \(gpu)")
        }
        #expect(host.agent.failureCount == 0, "seed \(seed)")
    }

    /// The same events as a claim's, but the agent took no step: nothing is kept, so they
    /// look afresh.
    @Test func eventsNoStepAccountsForLookAfresh() {
        let own = OwnEvents()
        let bind = UEvent(
            action: "bind", subsystem: "pci", devpath: "/devices/\(gpu)", properties: ["DRIVER": "vfio-pci"])
        #expect(!own.take(bind, for: gpu))
        #expect(own.begin(gpu) == nil)
    }

    @Test func aBindToAnotherDriverThanTheStepsIsNotItsOwnAndDropsTheView() {
        let own = OwnEvents()
        let step = Step(.bind(driver: "vfio-pci", from: "amdgpu"), reason: "test")
        own.expect(gpu, step)
        own.settled(gpu, on: HostView(devices: [], drivers: [], vfioNodes: [:]))
        let unbind = UEvent(action: "unbind", subsystem: "pci", devpath: "/devices/\(gpu)")
        let other = UEvent(
            action: "bind", subsystem: "pci", devpath: "/devices/\(gpu)", properties: ["DRIVER": "amdgpu"])
        #expect(own.take(unbind, for: gpu))
        #expect(!own.take(other, for: gpu))
        #expect(own.count == 0 && own.begin(gpu) == nil)
    }

    /// The events follow within milliseconds; a view older than `lifetime` is not used.
    @Test func aViewOutlivesItsEventsOnlyForItsLifetime() {
        let own = OwnEvents(lifetime: .zero)
        own.expect(gpu, Step(.bind(driver: "vfio-pci", from: nil), reason: "test"))
        own.settled(gpu, on: HostView(devices: [], drivers: [], vfioNodes: [:]))
        let bind = UEvent(
            action: "bind", subsystem: "pci", devpath: "/devices/\(gpu)", properties: ["DRIVER": "vfio-pci"])
        #expect(!own.take(bind, for: gpu))
        #expect(own.begin(gpu) == nil)
        own.expect(gpu, Step(.unbind(from: "vfio-pci"), reason: "test"))
        own.sweep()
        #expect(own.count == 0)
    }

    /// A sweep looks at no entry before one can have outlived its lifetime, and then drops
    /// exactly those that did, and the later ones in their time.
    @Test func eachSweepDropsWhatOutlivedItsLifetimeAndNoMore() {
        let own = OwnEvents(lifetime: .milliseconds(300))
        let nic = PCIAddress("0000:13:00.0")!
        own.expect(gpu, Step(.unbind(from: "vfio-pci"), reason: "test"))
        own.sweep()
        #expect(own.count == 1)
        sleep(for: .milliseconds(200))
        own.expect(nic, Step(.unbind(from: "vfio-pci"), reason: "test"))
        sleep(for: .milliseconds(200))
        own.sweep()
        #expect(own.count == 1, "the GPU's went, the NIC's stays")
        sleep(for: .milliseconds(200))
        own.sweep()
        #expect(own.count == 0)
    }
}
