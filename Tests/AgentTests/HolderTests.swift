import Foundation
import Glibc
import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Policy
import Synchronization
import Testing

/// A VM keeps what it holds: while a process holds a device's `/dev/vfio` node, the agent
/// neither unbinds the device, nor returns it to its host driver, nor changes its PF's VF
/// count. It waits, says why, and acts once the node is closed. The simulated kernel
/// blocks such an unbind as the real one does, so an agent that tried would hang here.
struct HolderTests {
    let gpu = "0000:12:00.0"

    /// Runs `body` on its own thread; false when it has not returned within `limit` (then
    /// `unblock` lets the kernel go so the thread can end).
    func returns(within limit: Duration, unblock: () -> Void, _ body: @escaping @Sendable () -> Void) -> Bool {
        let done = Mutex(false)
        startThread {
            body()
            done.withLock { $0 = true }
        }
        if waitFor(limit, { done.withLock { $0 } }) { return true }
        unblock()
        _ = waitFor(.seconds(10)) { done.withLock { $0 } }
        return false
    }

    @Test func aPolicyRemovedWhileAVMHoldsTheGroupWaitsAndNeverBlocksInTheKernel() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        #expect(host.runOnce())
        let group = try #require(host.device(gpu)?.group)
        host.kernel.holdNode(group, pid: 4242, command: "qemu-system-x86")
        let historyBefore = host.history
        host.agent.planner = Planner(policies: PolicySet([]))
        let agent = host.agent
        #expect(returns(within: .seconds(10), unblock: { host.kernel.closeNode(group) }) { agent.reconcileAll() })
        // The held GPU stays; the others go back.
        #expect(host.device(gpu)?.driver == "vfio-pci")
        #expect(!host.history.dropFirst(historyBefore.count).contains { $0.contains(gpu) })
        #expect(host.addresses { $0.driver == "vfio-pci" } == [gpu])
        let waiting =
            "waiting: put back unbound: /dev/vfio/\(group) is open by qemu-system-x86 (pid 4242); the kernel would "
                + "block in the unbind until it lets go"
        #expect(try host.planLines().contains("  " + waiting))
        #expect(host.log.containing("notice: \(gpu) \(waiting)").count >= 1)
        #expect(host.agent.hasWaiting)
        // Closed: the next look (an event, or the daemon's timer) puts it back.
        host.kernel.closeNode(group)
        host.agent.retryWaiting()
        #expect(host.device(gpu)?.driver == nil && host.device(gpu)?.override == nil)
        #expect(!host.agent.hasWaiting)
    }

    /// The daemon knows a VFIO driver by the kernel's list too, not only `list` and
    /// `doctor`: a held device on a driver built on vfio-pci-core whose name says nothing
    /// (`acme_passthrough`) waits as one on vfio-pci does.
    @Test func aHeldDeviceOnAVFIODriverOfAnyNameWaits() throws {
        var description = try SimHost.load("seed-000-mi300x.json")
        description.drivers.append(
            HostDescription.Driver(
                name: "acme_passthrough", module: "acme_passthrough", loaded: true,
                loadable: true, ids: nil, classes: nil, sriov: nil, vfio: true))
        let index = try #require(description.devices.firstIndex { $0.address == gpu })
        description.devices[index].driver = "acme_passthrough"
        let host = try SimHost(
            description, policies: "[[policy]]\nname = \"host\"\nmatch.ids = [\"1002:74a1\"]\ndriver = \"amdgpu\"\n")
        let group = try #require(host.device(gpu)?.group)
        host.kernel.holdNode(group, pid: 4242, command: "qemu-system-x86")
        let agent = host.agent
        #expect(returns(within: .seconds(10), unblock: { host.kernel.closeNode(group) }) { agent.reconcileAll() })
        #expect(host.device(gpu)?.driver == "acme_passthrough")
        #expect(
            host.log.containing(
                "notice: \(gpu) [host] waiting: unbind acme_passthrough for amdgpu: /dev/vfio/\(group) is open"
            ).count >= 1)
    }

    @Test func aPolicyThatMovesAHeldDeviceToAnotherDriverWaitsToo() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        #expect(host.runOnce())
        let group = try #require(host.device(gpu)?.group)
        host.kernel.holdNode(group, pid: 7, command: "cloud-hypervisor")
        let stub = PolicyParser(accounts: TableAccounts(users: [:], groups: [:])).parse(
            """
            [[policy]]
            name = "stub"
            match.ids = ["1002:74a1"]
            driver = "pci-stub"
            """, file: "p.toml")
        host.agent.planner = Planner(policies: PolicySet(stub.policies))
        let agent = host.agent
        #expect(returns(within: .seconds(10), unblock: { host.kernel.closeNode(group) }) { agent.reconcileAll() })
        #expect(host.device(gpu)?.driver == "vfio-pci")
        #expect(
            try host.planLines().contains(
                "  waiting: unbind vfio-pci for pci-stub: /dev/vfio/\(group) is open by cloud-hypervisor (pid 7); the "
                    + "kernel would block in the unbind until it lets go"
            ))
    }

    @Test func aVFCountChangeWaitsWhileAVFIsInAGuest() throws {
        let host = try SimHost("seed-002-flex.json", policies: try SimHost.examplePolicy("seed-002"))
        #expect(host.runOnce())
        let vf = try #require(host.device("0000:4d:00.2"))
        let group = try #require(vf.group)
        host.kernel.holdNode(group, pid: 99, command: "qemu-system-x86")
        let fewer = try SimHost.examplePolicy("seed-002").replacingOccurrences(
            of: "sriov.num-vfs = 4", with: "sriov.num-vfs = 2")
        let parsed = PolicyParser(accounts: TableAccounts(users: ["vmuser": 1000], groups: ["kvm": 993])).parse(
            fewer, file: "p.toml")
        host.agent.planner = Planner(policies: PolicySet(parsed.policies))
        let agent = host.agent
        #expect(returns(within: .seconds(10), unblock: { host.kernel.closeNode(group) }) { agent.reconcileAll() })
        #expect(host.device("0000:4d:00.0")?.sriov?.count == 4)
        #expect(host.addresses { $0.physfn != nil }.count == 4)
        #expect(
            try host.planLines().contains(
                "  waiting: set sriov_numvfs to 2: /dev/vfio/\(group) is open by qemu-system-x86 (pid 99); changing "
                    + "the count would remove its VFs from under the VM"
            ))
        host.kernel.closeNode(group)
        host.agent.retryWaiting()
        #expect(host.device("0000:4d:00.0")?.sriov?.count == 2)
    }

    @Test func theExecutorAsksAgainRightBeforeAnUnbind() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        #expect(host.runOnce())
        let address = PCIAddress(gpu)!
        let group = try #require(host.device(gpu)?.group)
        // Planned while free, opened before the step runs.
        let origin = DriverOrigin(driver: nil, override: nil, movedTo: "vfio-pci")
        host.kernel.holdNode(group, pid: 1, command: "qemu")
        let executor = host.executor
        #expect(throws: AgentError.held(address, ["/dev/vfio/\(group) is open by qemu (pid 1)"], [1])) {
            try executor.perform(Step(.restore(origin), reason: "test"), on: address)
        }
        #expect(host.device(gpu)?.driver == "vfio-pci")
    }

    @Test func theDaemonLooksAgainOnItsTimerAndActsOnceTheNodeIsClosed() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        let group = 12
        let daemon = DaemonTests.Running(host, waitRetry: .milliseconds(200)) { PolicySet([]) }
        #expect(waitFor(.seconds(10)) { host.addresses { $0.driver == "vfio-pci" }.count == 16 })
        let held = try #require(host.addresses { $0.group == group }.first)
        host.kernel.holdNode(group, pid: 5, command: "qemu-system-x86")
        daemon.signals.send(SIGHUP)
        #expect(waitFor(.seconds(10)) { host.addresses { $0.driver == "vfio-pci" } == [held] })
        #expect(waitFor(.seconds(2)) { host.agent.hasWaiting })
        host.kernel.closeNode(group)
        // No event arrives; the timer alone brings it back.
        #expect(waitFor(.seconds(5)) { host.addresses { $0.driver == "vfio-pci" }.isEmpty })
        #expect(daemon.stop() == 0)
    }
}

/// Closing a node sends no uevent: the daemon watches the holding process through a pidfd
/// and looks again the moment it exits, long before its 10-second timed look.
struct HolderExitTests {
    @Test func aDeviceIsReturnedAtOnceWhenTheVMThatHeldItExits() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        let group = 12
        let daemon = DaemonTests.Running(host, waitRetry: .seconds(60)) { PolicySet([]) }
        #expect(waitFor(.seconds(10)) { host.addresses { $0.driver == "vfio-pci" }.count == 16 })
        let held = try #require(host.addresses { $0.group == group }.first)
        // A real process stands in for the VMM: its pid is what /proc shows holding the node.
        let vmm = Process()
        vmm.executableURL = URL(fileURLWithPath: "/bin/sleep")
        vmm.arguments = ["60"]
        try vmm.run()
        host.kernel.holdNode(group, pid: vmm.processIdentifier, command: "qemu-system-x86")
        daemon.signals.send(SIGHUP)
        #expect(waitFor(.seconds(10)) { host.addresses { $0.driver == "vfio-pci" } == [held] })
        #expect(waitFor(.seconds(2)) { host.agent.waitedFor == [vmm.processIdentifier] })
        Thread.sleep(forTimeInterval: 1.5)  // the daemon's loop has its pidfd by now
        // It exits: its descriptors close with it (the kernel's doing, no event).
        host.kernel.closeNode(group)
        kill(vmm.processIdentifier, SIGKILL)  // SIGTERM may be blocked in the test runner
        vmm.waitUntilExit()
        let exited = ContinuousClock.now
        #expect(waitFor(.seconds(5)) { host.addresses { $0.driver == "vfio-pci" }.isEmpty })
        #expect(ContinuousClock.now - exited < .seconds(2), "returned \(ContinuousClock.now - exited) after the exit")
        #expect(!host.log.containing("a process a device waits for has exited").isEmpty)
        #expect(daemon.stop() == 0)
    }
}

/// What holds a device besides its open node: a device descriptor taken from the group
/// (which outlives the group node) and a mapping of a BAR (which outlives every
/// descriptor). Where the kernel does not say of which device, the agent cannot know it is
/// not this one, and waits the same way.
struct DescriptorHolderTests {
    let gpu = "0000:12:00.0"

    @Test(arguments: [
        (
            NodeOpener.Hold.descriptor(PCIAddress("0000:12:00.0")!),
            "a VFIO device descriptor of 0000:12:00.0 is held by qemu-system-x86 (pid 4242)"
        ),
        (
            .descriptor(nil),
            "a VFIO device descriptor is held by qemu-system-x86 (pid 4242) (this kernel does not say of which device)"
        ),
        (
            .mapping,
            "a mapping of a VFIO device's region is held by qemu-system-x86 (pid 4242) (maps does not say of which "
                + "device)"
        )
    ])
    func aHeldDescriptorOrMappingKeepsTheDeviceWithTheGroupNodeClosed(hold: NodeOpener.Hold, says: String) throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        #expect(host.runOnce())
        host.kernel.holdDescriptor(of: PCIAddress(gpu)!, shown: hold, pid: 4242, command: "qemu-system-x86")
        host.agent.planner = Planner(policies: PolicySet([]))
        let lines = try host.planLines()
        #expect(
            lines.contains(
                "  waiting: put back unbound: \(says); the kernel would block in the unbind until it lets go"))
        // The kernel says which devices are open (their enable count): the others go back.
        #expect(lines.filter { $0.hasPrefix("  waiting:") }.count == 1, "\(lines)")
        host.agent.reconcileAll()
        #expect(host.addresses { $0.driver == "vfio-pci" } == [gpu])
        host.kernel.releaseDescriptors()
        host.agent.reconcileAll()
        #expect(host.device(gpu)?.driver == nil)
    }
}

/// Not seeing is not knowing: in a PID namespace other than the host's, `/proc` shows no
/// VMM of another pod, so nothing a VM could hold is unbound, returned or has its VF count
/// changed; plan says why.
struct PIDNamespaceTests {
    @Test func anAgentInAPIDNamespaceOfItsOwnWaitsInsteadOfReturningAClaimedDevice() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        #expect(host.runOnce())
        let claimed = host.addresses { $0.driver == "vfio-pci" }
        #expect(!claimed.isEmpty)
        host.kernel.state.write { $0.pidNamespace = "pid:[4026532711]" }
        host.agent.planner = Planner(policies: PolicySet([]))
        let why =
            "the agent runs in PID namespace pid:[4026532711], not the host's: it cannot see the processes that may "
                + "hold the device"
        #expect(
            try host.planLines().contains(
                "  waiting: put back unbound: \(why); the kernel would block in the unbind until it lets go"))
        host.agent.reconcileAll()
        #expect(host.addresses { $0.driver == "vfio-pci" } == claimed)
        // Back in the host's namespace, with nothing holding them, they go back.
        host.kernel.state.write { $0.pidNamespace = hostPIDNamespace }
        host.agent.reconcileAll()
        #expect(host.addresses { $0.driver == "vfio-pci" }.isEmpty)
    }
}

/// The pidfd watch itself: exited processes are told apart from running ones, and no
/// number of holders takes more than `HolderWatch.limit` descriptors.
struct HolderWatchTests {
    @Test func aGoneProcessIsSaidOnceAndTheWatchIsBounded() throws {
        let watch = HolderWatch()
        // Far above pid_max: never a process; treated as gone, and said once.
        #expect(!watch.watch([getpid()]))
        #expect(watch.descriptors.count == 1)
        #expect(watch.watch([getpid(), 99_999_999]))
        #expect(!watch.watch([getpid(), 99_999_999]))
        #expect(watch.descriptors.count == 1)
        // Many holders (the same live process's pid stands for each in turn): bounded.
        var children: [Process] = []
        defer { for child in children { kill(child.processIdentifier, SIGKILL); child.waitUntilExit() } }
        for _ in 0..<(HolderWatch.limit + 8) {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: "/bin/sleep")
            child.arguments = ["30"]
            try child.run()
            children.append(child)
        }
        _ = watch.watch(Set(children.map(\.processIdentifier)))
        #expect(watch.descriptors.count == HolderWatch.limit)
        _ = watch.watch([])
        #expect(watch.descriptors.isEmpty)
    }
}
