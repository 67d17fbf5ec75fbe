import Foundation
import Glibc
import HostInterface
@testable import AgentCommands
@testable import HotplugAgent
@testable import Simulation
import Policy
import Testing

/// iommufd device nodes: each device on a VFIO driver has `/dev/vfio/devices/vfioN`, found
/// only through `<device>/vfio-dev/`, renumbered as devices come and go. The policy's
/// owner, group and mode go on it within the same reconcile as the group node, and the
/// VM user can open `/dev/iommu`.
struct DeviceNodeTests {
    static let policies = """
        [[policy]]
        name = "gpus"
        match.ids = ["1002:74a1"]
        driver = "vfio-pci"
        owner = "cloud"
        group = "kvm"
        mode = "0660"
        [[policy]]
        name = "nics"
        match.ids = ["15b3:1021"]
        driver = "vfio-pci"
        owner = "0"
        group = "kvm"
        mode = "0640"
        """

    func host(_ toml: String = policies) throws -> SimHost {
        var description = try SimHost.load("seed-000-mi300x.json")
        description.vfioDeviceNodes = true
        return try SimHost(description, policies: toml)
    }

    func deviceNode(_ host: SimHost, _ address: String) -> SimulatedState.Node? {
        host.kernel.inspect { state in state.devices[PCIAddress(address)!]?.deviceNode.flatMap { state.deviceNodes[$0] }
        }
    }

    @Test func coldplugOwnsEveryClaimedDevicesNodeAndOpensDevIOMMUToItsUsers() throws {
        let host = try host()
        #expect(host.runOnce())
        let claimed = host.addresses { $0.driver == "vfio-pci" }
        #expect(claimed.count == 16)
        for address in claimed {
            let node = try #require(deviceNode(host, address), "\(address)")
            let gpu = host.device(address)?.id.device == 0x74a1
            #expect(node.uid == (gpu ? 1000 : 0) && node.gid == 993 && node.mode == (gpu ? 0o660 : 0o640), "\(address)")
            #expect(node.device == PCIAddress(address))
        }
        let access = try #require(try host.kernel.nodeAccess("/dev/iommu"))
        #expect(access.userCanOpen(1000) && access.groupCanOpen(993) && access.userCanOpen(0))
        #expect(!host.log.containing("read-write access to /dev/iommu (ACL)").isEmpty)
        // Settled: nothing is written again.
        let settled = host.log.all.count
        #expect(host.runOnce())
        #expect(!host.log.all.dropFirst(settled).contains { $0.contains("set /dev/vfio") || $0.contains("grant") })
    }

    @Test func theNodeIsOwnedInTheSameReconcileAsTheGroupNodeAndPlanSaysSo() throws {
        let host = try host()
        let address = PCIAddress("0000:12:00.0")!
        #expect(host.agent.reconciler.reconcile(address).outcome == .settled)
        let node = try #require(deviceNode(host, "0000:12:00.0"))
        #expect(node.uid == 1000 && node.mode == 0o660)
        let group = try #require(host.node(host.device("0000:12:00.0")!.group!))
        #expect(group.uid == 1000 && group.mode == 0o660)
        // Put back to root 0600 (a new node), plan names the device node by its number.
        let name = "vfio\(host.device("0000:12:00.0")!.deviceNode!)"
        try host.kernel.setNodeAccess("/dev/vfio/devices/\(name)", uid: 0, gid: 0, mode: 0o600)
        #expect(
            try host.planLines().contains(
                "  set /dev/vfio/devices/\(name) owner cloud (1000) group kvm (993) mode 0660: it is 0:0 0600 now"))
    }

    @Test func aNumberFreedByOneDeviceAndTakenByAnotherGetsTheOthersPolicy() throws {
        let host = try host()
        #expect(host.runOnce())
        let gpu = "0000:12:00.0"
        let freed = try #require(host.device(gpu)?.deviceNode)
        host.kernel.unplug(PCIAddress(gpu)!)
        host.deliverEvents()
        // A NIC arrives and takes the lowest free number: the GPU's.
        let nic = "0000:13:00.0"
        host.kernel.unplug(PCIAddress(nic)!)
        host.deliverEvents()
        try host.plugAgain(nic)
        host.deliverEvents()
        #expect(host.device(nic)?.driver == "vfio-pci")
        let node = try #require(deviceNode(host, nic))
        #expect(host.device(nic)?.deviceNode == min(freed, host.device(nic)!.deviceNode!))
        #expect(node.uid == 0 && node.gid == 993 && node.mode == 0o640)
    }

    @Test func nodesOfDevicesNoPolicyClaimsAreLeftAlone() throws {
        var description = try SimHost.load("seed-000-mi300x.json")
        description.vfioDeviceNodes = true
        let index = try #require(description.devices.firstIndex { $0.address == "0000:12:00.0" })
        description.devices[index].driver = "vfio-pci"
        let host = try SimHost(
            description, policies: Self.policies.replacingOccurrences(of: "1002:74a1", with: "1002:ffff"))
        #expect(host.runOnce())
        let node = try #require(deviceNode(host, "0000:12:00.0"))
        #expect(node.uid == 0 && node.gid == 0 && node.mode == 0o600)
    }

    @Test func theExecutorLeavesANodeThatIsAnotherDevicesNow() throws {
        let host = try host()
        #expect(host.runOnce())
        let a = PCIAddress("0000:12:00.0")!
        let number = try #require(host.device("0000:12:00.0")?.deviceNode)
        // The kernel says vfioN is 0000:12:00.0's; the node at that name is checked
        // against that number before it changes.
        try host.kernel.setNodeAccess("/dev/vfio/devices/vfio\(number)", uid: 0, gid: 0, mode: 0o600)
        #expect(throws: IOFailure.self) {
            try host.kernel.setNodeAccess(
                "/dev/vfio/devices/vfio\(number)", uid: 5, gid: 5, mode: 0o666,
                device: SimulatedState.deviceNodeNumber(number + 1))
        }
        #expect(deviceNode(host, "0000:12:00.0")?.uid == 0)
        let step = Step(
            .setDeviceNodeAccess(name: "vfio\(number)", owner: Account(id: 7), nodeGroup: nil, mode: nil),
            reason: "test")
        try host.executor.perform(step, on: a)
        #expect(deviceNode(host, "0000:12:00.0")?.uid == 7)
    }

    @Test func deviceNodeEventsNameTheirPCIDevice() {
        let event = UEvent(
            action: "add", subsystem: "vfio-dev", devpath: "/devices/pci0000:00/0000:00:03.0/vfio-dev/vfio0",
            devname: "vfio/devices/vfio0")
        #expect(event.target == .device(PCIAddress("0000:00:03.0")!))
        #expect(UEvent(action: "add", subsystem: "vfio-dev", devpath: "/devices/virtual/vfio-dev/vfio0").target == nil)
    }
}

/// The ACL codec behind `/dev/iommu`: the kernel's format, sorted entries, nothing lost.
struct POSIXACLTests {
    @Test func grantingAddsNamedEntriesAndAMaskAndTakesNothingAway() throws {
        var acl = POSIXACL(mode: 0o660)
        acl.grant(users: [1000], groups: [993])
        #expect(acl.entries.map(\.tag) == [.userObj, .user, .groupObj, .group, .mask, .other])
        let decoded = try #require(POSIXACL(xattr: acl.xattr))
        #expect(decoded == acl)
        let access = acl.access(owner: 0, group: 0)
        #expect(access.users == [0, 1000] && access.groups == [0, 993] && !access.everyone)
        var again = acl
        again.grant(users: [1000], groups: [993])
        #expect(again == acl)
        // A mask that let less through only grows; an entry with less only gains.
        var narrow = try #require(
            POSIXACL(xattr: [
                2, 0, 0, 0, 1, 0, 6, 0, 255, 255, 255, 255, 2, 0, 4, 0, 42, 0, 0, 0,
                4, 0, 6, 0, 255, 255, 255, 255, 16, 0, 4, 0, 255, 255, 255, 255,
                32, 0, 0, 0, 255, 255, 255, 255
            ]))
        #expect(!narrow.access(owner: 0, group: 0).users.contains(42))
        narrow.grant(users: [42], groups: [])
        #expect(narrow.access(owner: 0, group: 0).users == [0, 42])
        // The owning group read only through the old mask; it still does.
        #expect(narrow.access(owner: 0, group: 0).groups.isEmpty)
        #expect(narrow.entries.first { $0.tag == .groupObj }?.perm == 4)
        #expect(POSIXACL(xattr: [1, 0, 0, 0]) == nil)
    }
}

/// What the other commands make of iommufd: vm-args's iommufd form, doctor's finding, and
/// a record that carries device nodes and variant aliases into simulate.
struct IOMMUFDCommandTests {
    @Test func vmArgsPrintsTheIommufdFormForQEMU() {
        let devices = [
            PCIDevice(
                address: PCIAddress("0000:12:00.0")!, id: PCIID("1002:74a1")!, classCode: 0x120000, driver: "vfio-pci"),
            PCIDevice(
                address: PCIAddress("0000:13:00.1")!, id: PCIID("15b3:101e")!, classCode: 0x020000,
                driver: "mlx5_vfio_pci")
        ]
        #expect(
            VMArguments.render(devices, as: .qemu, iommufd: true) == """
                -object iommufd,id=iommufd0 \\
                -device vfio-pci,host=0000:12:00.0,iommufd=iommufd0 \\
                -device vfio-pci,host=0000:13:00.1,iommufd=iommufd0

                """)
        #expect(VMArguments.render([], as: .qemu, iommufd: true) == "")
    }

    @Test func doctorSaysWhetherTheVMUserCanOpenDevIOMMU() throws {
        var description = try SimHost.load("seed-000-mi300x.json")
        description.vfioDeviceNodes = true
        let host = try SimHost(description, policies: DeviceNodeTests.policies)
        func finding() -> Doctor.Finding? {
            let names = accountNames(host.agent.planner.policies, TableAccounts(users: [:], groups: [:]))
            return Doctor(
                reader: host.reader, policies: host.agent.planner.policies, readFile: { _ in nil },
                accounts: names
            ).run().first { $0.subject == "iommufd" }
        }
        #expect(finding()?.status == .warn)
        #expect(finding()?.message.hasSuffix("user cloud, group 993 cannot open /dev/iommu yet") == true)
        #expect(host.runOnce())
        #expect(finding()?.status == .pass)
        #expect(
            finding()?.message
                == "/dev/iommu and device nodes in /dev/vfio/devices; the policies' users can open /dev/iommu")
        let legacy = try SimHost("seed-000-mi300x.json", policies: DeviceNodeTests.policies)
        let none = Doctor(
            reader: legacy.reader, policies: legacy.agent.planner.policies, readFile: { _ in nil }, accounts: [:]
        ).run()
        #expect(
            none.first { $0.subject == "iommufd" }?.message
                == "no /dev/iommu: VMMs use the group nodes and /dev/vfio/vfio")
    }

    @Test func aRecordCarriesDeviceNodesAndVariantAliasesIntoSimulate() throws {
        var description = try SimHost.load("seed-000-mi300x.json")
        description.vfioDeviceNodes = true
        description.kernelRelease = "6.12.0-test"
        description.vfioAliases = [VariantDriverTests.mlx5Alias]
        let host = try SimHost(description, policies: "")
        let recorded = try HostRecorder(reader: host.reader, readFile: { _ in nil }).record()
        #expect(recorded.vfioDeviceNodes == true)
        #expect(recorded.kernelRelease == "6.12.0-test")
        #expect(recorded.vfioAliases == [VariantDriverTests.mlx5Alias])
    }
}

/// `/dev/iommu` grants follow the policies: only where a policy's mode lets that owner or
/// group write, and taken back (only the entries the agent added) once no policy names
/// them; an ACL the agent cannot decode is never replaced.
struct IOMMUGrantTests {
    func host(_ toml: String) throws -> SimHost {
        var description = try SimHost.load("seed-000-mi300x.json")
        description.vfioDeviceNodes = true
        return try SimHost(description, policies: toml)
    }

    static func policy(mode: String, owner: String = "1000") -> String {
        """
        [[policy]]
        name = "gpus"
        match.ids = ["1002:74a1"]
        driver = "vfio-pci"
        owner = "\(owner)"
        group = "993"
        mode = "\(mode)"
        """
    }

    @Test func aModeThatGivesTheGroupNoWriteGivesItNoIOMMUAccess() throws {
        let host = try host(Self.policy(mode: "0640"))
        #expect(host.runOnce())
        let access = try #require(try host.kernel.nodeAccess("/dev/iommu"))
        #expect(access.userCanOpen(1000) && !access.groupCanOpen(993))
    }

    @Test func entriesTheAgentAddedAreTakenBackOnceNoPolicyNamesThem() throws {
        let host = try host(Self.policy(mode: "0660"))
        // An entry an admin made before: never the agent's to take back.
        _ = try host.kernel.grantNodeAccess("/dev/iommu", users: [555], groups: [])
        #expect(host.runOnce())
        var access = try #require(try host.kernel.nodeAccess("/dev/iommu"))
        #expect(access.userCanOpen(1000) && access.groupCanOpen(993) && access.userCanOpen(555))
        // The policy now names another owner: 1000's entry goes, 993's stays, 555's stays.
        host.agent.planner = Planner(
            policies: PolicyParser(accounts: TableAccounts(users: [:], groups: [:]))
                .parse(Self.policy(mode: "0660", owner: "2000"), file: "p.toml").policies.map { PolicySet([$0]) }[0])
        #expect(try host.planLines().contains { $0.contains("grant") })
        host.agent.reconcileAll()
        access = try #require(try host.kernel.nodeAccess("/dev/iommu"))
        #expect(
            !access.userCanOpen(1000) && access.userCanOpen(2000) && access.groupCanOpen(993) && access.userCanOpen(555)
        )
        #expect(!host.log.containing("/dev/iommu: take back the ACL entries the agent added for user 1000").isEmpty)
        // No policy at all: everything the agent added goes, the admin's entry stays.
        host.agent.planner = Planner(policies: PolicySet([]))
        host.agent.reconcileAll()
        access = try #require(try host.kernel.nodeAccess("/dev/iommu"))
        #expect(!access.userCanOpen(2000) && !access.groupCanOpen(993) && access.userCanOpen(555))
    }

    /// ACL entries that cannot be recorded where they would be believed (the state directory
    /// below another user's) could never be taken back: the step fails and leaves none.
    /// Found by this round's attacker: the entries were granted, recorded where the agent
    /// then refused to read them, and stayed after the policy went.
    @Test(.enabled(if: runningAsRoot, "chown needs root"))
    func entriesThatCannotBeRecordedAreNotLeft() throws {
        let host = try host(Self.policy(mode: "0660"))
        #expect(host.runOnce())
        #expect(try #require(try host.kernel.nodeAccess("/dev/iommu")).userCanOpen(1000))
        // The state directory becomes another user's: the grant for 2000 cannot be recorded.
        #expect(chown(host.state, 1000, 1000) == 0)
        host.agent.planner = Planner(
            policies: PolicyParser(accounts: TableAccounts(users: [:], groups: [:]))
                .parse(Self.policy(mode: "0660", owner: "2000"), file: "p.toml").policies.map { PolicySet([$0]) }[0])
        host.agent.reconcileAll()
        let access = try #require(try host.kernel.nodeAccess("/dev/iommu"))
        #expect(!access.userCanOpen(2000), "an entry nobody could take back was left")
        #expect(!host.log.containing("would not be believed").isEmpty)
        #expect(chown(host.state, 0, 0) == 0)
    }

    /// Entries taken back while the record cannot change are put back as recorded: a record
    /// still naming them would later take back an admin's entry for the same user (found by
    /// this round's attacker, with the state directory on a read-only mount).
    @Test(.enabled(if: runningAsRoot, "chattr needs root"))
    func entriesTakenBackWhileTheRecordCannotChangeArePutBack() throws {
        let host = try host(Self.policy(mode: "0660"))
        #expect(host.runOnce())
        // The record can be read and not changed, as on a read-only mount: the directory
        // immutable (`chattr +i`; ext4 and tmpfs have it).
        try #require(try chattr("+i", host.state) == 0, "the state directory's file system cannot make it immutable")
        defer { _ = try? chattr("-i", host.state) }
        host.agent.planner = Planner(policies: PolicySet([]))
        host.agent.reconcileAll()
        var access = try #require(try host.kernel.nodeAccess("/dev/iommu"))
        #expect(access.userCanOpen(1000) && access.groupCanOpen(993), "taken back, yet still recorded as added")
        #expect(try chattr("-i", host.state) == 0)
        host.agent.reconcileAll()
        access = try #require(try host.kernel.nodeAccess("/dev/iommu"))
        #expect(!access.userCanOpen(1000) && !access.groupCanOpen(993))
    }

    @Test func grantingNarrowsOnlyWhatTheGrownMaskWouldNewlyLetThrough() throws {
        // user 42 rwx, mask r--: 42 reads only. Granting 7 grows the mask to rw-.
        var acl = try #require(
            POSIXACL(xattr: [
                2, 0, 0, 0, 1, 0, 6, 0, 255, 255, 255, 255, 2, 0, 7, 0, 42, 0, 0, 0,
                4, 0, 4, 0, 255, 255, 255, 255, 16, 0, 4, 0, 255, 255, 255, 255,
                32, 0, 0, 0, 255, 255, 255, 255
            ]))
        let made = acl.grant(users: [7], groups: [])
        #expect(made.users == [7] && made.groups.isEmpty)
        // 42 loses only the write the new mask would let through; its execute, held back
        // by the mask before and after, is still its own for an admin who widens the mask.
        #expect(acl.entries.first { $0.tag == .user && $0.id == 42 }?.perm == 0o5)
        #expect(!acl.access(owner: 0, group: 0).users.contains(42))
        acl.revoke(users: [7], groups: [])
        #expect(!acl.entries.contains { $0.tag == .user && $0.id == 7 })
    }

    @Test func anACLTheAgentCannotDecodeIsAnErrorNotTheBareMode() throws {
        #expect(throws: IOFailure.self) {
            try POSIXACL.decoding([2, 0, 0, 0, 1, 0, 6, 0, 255, 255, 255, 255], of: "/dev/iommu")
        }
        #expect(throws: IOFailure.self) { try POSIXACL.decoding([3, 0, 0, 0], of: "/dev/iommu") }
        let acl = POSIXACL(mode: 0o660)
        #expect(try POSIXACL.decoding(acl.xattr, of: "/dev/iommu") == acl)
    }
}
