import Foundation
import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Policy
import Testing

/// Devices go back where they came from when no policy wants them any more.
struct UndoTests {
    let nic = "0000:13:00.0", gpu = "0000:12:00.0"

    func seed000() throws -> SimHost {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        #expect(host.runOnce())
        return host
    }

    /// The device's record: the target of the link named for it, never followed.
    func record(_ host: SimHost, _ address: String) throws -> String {
        try FileManager.default.destinationOfSymbolicLink(atPath: host.state + "/origins/\(address)")
    }

    @Test func theOriginIsRecordedBeforeTheFirstChange() throws {
        let host = try seed000()
        #expect(host.originRecords.count == 16)
        let record = try record(host, nic)
        #expect(record == "driver=mlx5_core\noverride=\nmoved-to=vfio-pci\ndevice=15b3:1021\n")
    }

    /// A device whose `driver_override` holds something other than a driver's name cannot
    /// be recorded as the agent could read it back: it is not moved (the claim fails, saying
    /// why), rather than moved and then never put back.
    @Test func aDeviceWhoseOriginCannotBeRecordedIsNotMoved() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        try host.kernel.write(host.kernel.paths.attribute(PCIAddress(nic)!, "driver_override"), "my driver")
        #expect(!host.runOnce())
        #expect(host.device(nic)?.driver == "mlx5_core" && host.device(nic)?.override == "my driver")
        #expect(!host.originRecords.contains(nic) && host.originRecords.count == 15)
        #expect(!host.log.containing("names something other than a driver").filter { $0.contains(nic) }.isEmpty)
    }

    @Test func removingThePolicyAndReloadingPutsDevicesBack() throws {
        let host = try seed000()
        // What the daemon does on SIGHUP: new policies, then every device reconciled.
        host.agent.planner = Planner(policies: PolicySet([]))
        host.agent.reconcileAll()
        for address in host.addresses(where: { $0.id.device == 0x1021 }) {
            #expect(host.device(address)?.driver == "mlx5_core" && host.device(address)?.override == nil, "\(address)")
        }
        for address in host.addresses(where: { $0.id.device == 0x74a1 }) {
            #expect(host.device(address)?.driver == nil && host.device(address)?.override == nil, "\(address)")
        }
        #expect(host.kernel.inspect { $0.nodes.isEmpty })
        #expect(host.originRecords.isEmpty)
        #expect(host.log.containing("[-]").isEmpty)
        #expect(
            host.log.containing(
                "\(nic) put back on mlx5_core: no policy wants it any more; the agent moved it to vfio-pci from "
                    + "mlx5_core"
            ).count == 1)
    }

    /// A record that cannot be forgotten (a read-only state directory) fails the step, saying
    /// why, where the step said nothing and the device "did not settle".
    @Test(.enabled(if: runningAsRoot, "chattr needs root"))
    func aRecordThatCannotBeForgottenSaysWhy() throws {
        let host = try seed000()
        try #require(try chattr("+i", host.state + "/origins") == 0, "the file system cannot make it immutable")
        defer { _ = try? chattr("-i", host.state + "/origins") }
        try host.kernel.write(host.kernel.paths.attribute(PCIAddress(nic)!, "driver/unbind"), nic)
        try host.kernel.write(host.kernel.paths.attribute(PCIAddress(nic)!, "driver_override"), "\n")
        host.agent.planner = Planner(policies: PolicySet([]))
        host.agent.reconcileAll()
        let said = host.log.containing("unlink \(host.state)/origins/\(nic): Operation not permitted (EPERM)")
        #expect(!said.isEmpty, "\(host.log.containing(nic).suffix(4))")
    }

    /// A device another agent moved beside the daemon (`run --once`) goes back at the
    /// daemon's next reload without its policy: the records are read afresh there. Found by
    /// this round's attacker: the daemon kept "no record" from its coldplug and never put
    /// the device back until it was restarted.
    @Test func aDeviceAnotherAgentMovedGoesBackAtTheNextReload() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: "")
        #expect(host.runOnce())
        #expect(host.device(nic)?.driver == "mlx5_core")
        let claims = PolicyParser(accounts: TableAccounts(users: [:], groups: [:])).parse(
            "[[policy]]\nname = \"nics\"\nmatch.ids = [\"15b3:1021\"]\ndriver = \"vfio-pci\"\n", file: "p.toml")
        let (beside, _) = host.countingAgent(policies: PolicySet(claims.policies))
        #expect(beside.runOnce(events: host.kernel))
        #expect(host.device(nic)?.driver == "vfio-pci" && host.originRecords.contains(nic))
        host.agent.planner = Planner(policies: PolicySet([]))
        host.agent.reconcileAll()
        #expect(host.device(nic)?.driver == "mlx5_core" && !host.originRecords.contains(nic))
    }

    /// On a kernel with iommufd device nodes, a device leaving vfio-pci sends `remove` for
    /// its `vfio-dev/vfioN` entry below it: the device stays, and so does where it came from.
    @Test func aDeviceUnboundByHandStillGoesBackWhereItCameFrom() throws {
        var description = try SimHost.load("seed-000-mi300x.json")
        description.vfioDeviceNodes = true
        let host = try SimHost(description, policies: try SimHost.examplePolicy("seed-000"))
        #expect(host.runOnce())
        _ = host.kernel.drain()
        try host.kernel.write("/sys/bus/pci/drivers/vfio-pci/unbind", nic)
        let events = host.kernel.drain()
        #expect(events.events.contains { $0.subsystem == "vfio-dev" && $0.action == "remove" })
        host.agent.handle(events)
        host.deliverEvents()
        #expect(host.device(nic)?.driver == "vfio-pci")
        let record = try record(host, nic)
        #expect(record == "driver=mlx5_core\noverride=\nmoved-to=vfio-pci\ndevice=15b3:1021\n")
        #expect(host.log.containing("\(nic) removed").isEmpty)
        host.agent.planner = Planner(policies: PolicySet([]))
        host.agent.reconcileAll()
        #expect(host.device(nic)?.driver == "mlx5_core")
    }

    @Test func afterARestartTheRecordsStillPutDevicesBack() throws {
        let host = try seed000()
        let restarted = try host.restarted(policies: "")
        #expect(restarted.runOnce(events: host.kernel))
        #expect(host.addresses { $0.driver == "mlx5_core" }.count == 8)
        #expect(host.addresses { $0.driver == "vfio-pci" }.isEmpty)
    }

    @Test func aDeviceMovedTwiceGoesBackToWhereItFirstCameFrom() throws {
        let host = try seed000()
        let stub = try SimHost.examplePolicy("seed-000").replacingOccurrences(
            of: "name = \"connectx-7\"\nmatch.ids = [\"15b3:1021\"]\ndriver = \"vfio-pci\"",
            with: "name = \"connectx-7\"\nmatch.ids = [\"15b3:1021\"]\ndriver = \"pci-stub\"")
        let second = try host.restarted(policies: stub)
        #expect(second.runOnce(events: host.kernel))
        #expect(host.device(nic)?.driver == "pci-stub")
        let third = try host.restarted(policies: "")
        #expect(third.runOnce(events: host.kernel))
        #expect(host.device(nic)?.driver == "mlx5_core")
    }

    @Test func aStaleRecordIsForgotten() throws {
        let host = try seed000()
        // The NIC is replugged and comes up on mlx5_core; no policy wants it now.
        host.kernel.unplug(PCIAddress(nic)!)
        try host.kernel.loadModule("mlx5_core")
        try host.plugAgain(nic)
        let restarted = try host.restarted(
            policies: try SimHost.examplePolicy("seed-000").replacingOccurrences(of: "15b3:1021", with: "15b3:ffff"))
        restarted.handle(host.kernel.drain())
        #expect(host.device(nic)?.driver == "mlx5_core")
        #expect(!host.originRecords.contains(nic))
    }

    @Test func aTornStateDirectoryIsUnderstood() throws {
        let host = try seed000()
        // A crash between making a record and its rename leaves a temporary link (a file,
        // from an older version); a record may be garbage.
        let origins = host.state + "/origins"
        #expect(symlink("driver=amdgpu\noverride=\nmoved-to=vfio-pci\n", "\(origins)/.\(gpu).0123abc") == 0)
        try "driver=amdgpu\n".write(toFile: "\(origins)/.\(gpu).tmp", atomically: false, encoding: .utf8)
        #expect(unlink("\(origins)/0000:22:00.0") == 0)
        try "\u{0}\u{1}garbage".write(toFile: "\(origins)/0000:22:00.0", atomically: false, encoding: .utf8)
        let restarted = try host.restarted(policies: "")
        #expect(restarted.runOnce(events: host.kernel))
        #expect(host.device(gpu)?.driver == nil)
        #expect(host.device(nic)?.driver == "mlx5_core")
        // A record it cannot read leaves that device where it is.
        #expect(host.device("0000:22:00.0")?.driver == "vfio-pci")
    }

    @Test func aHotRemovedDevicesOriginRecordGoesWithIt() throws {
        let host = try seed000()
        #expect(host.originRecords.contains(nic))
        host.kernel.unplug(PCIAddress(nic)!)
        host.deliverEvents()
        #expect(!host.originRecords.contains(nic))
        #expect(host.originRecords.count == 15)
    }

    @Test func originRecordsOfDevicesThatLeftWhileNoAgentRanAreDroppedAtStart() throws {
        let host = try seed000()
        // Unplugged while the agent was down: its remove event never reached an agent.
        host.kernel.unplug(PCIAddress(nic)!)
        _ = host.kernel.drain()
        #expect(host.originRecords.contains(nic))
        let restarted = try host.restarted(policies: try SimHost.examplePolicy("seed-000"))
        #expect(restarted.runOnce(events: host.kernel))
        #expect(!host.originRecords.contains(nic))
        #expect(host.originRecords.count == 15)
        #expect(!host.log.containing("forgot where it came from").filter { $0.contains(nic) }.isEmpty)
    }

    /// A record names the device it was written for: another card put in the slot unseen
    /// (while no agent ran) is not "put back" to the old one's driver; the record is said
    /// not to be believed, and goes.
    @Test func aRecordIsNotBelievedForAnotherCardInTheSlot() throws {
        let host = try seed000()
        host.kernel.unplug(PCIAddress(nic)!)
        var other = try host.described(nic)
        (other.id, other.subsystem) = ("8086:1593", "8086:0002")
        try host.kernel.plug(other)
        // On vfio-pci by the admin's hand (as driverctl does).
        try host.kernel.write(host.kernel.paths.attribute(PCIAddress(nic)!, "driver_override"), "vfio-pci")
        try host.kernel.write("/sys/bus/pci/drivers/\(host.device(nic)?.driver ?? "none")/unbind", nic)
        try host.kernel.write("/sys/bus/pci/drivers_probe", nic)
        _ = host.kernel.drain()
        #expect(host.device(nic)?.driver == "vfio-pci" && host.originRecords.contains(nic))
        let restarted = try host.restarted(policies: "")
        _ = restarted.runOnce(events: host.kernel)
        #expect(host.device(nic)?.driver == "vfio-pci")
        #expect(!host.originRecords.contains(nic))
        #expect(host.log.containing("it was recorded for a 15b3:1021 device; a 8086:1593 is there now").count == 1)
        #expect(host.log.containing("\(nic) put back").isEmpty)
    }

    /// A PF's SR-IOV record an older build wrote (no `device=`) gains the line when the
    /// agent changes the PF again, as a moved device's does.
    @Test func anOlderSRIOVRecordGainsTheDeviceItWasWrittenFor() throws {
        let pf = "0000:4d:00.0"
        let host = try SimHost("seed-002-flex.json", policies: try SimHost.examplePolicy("seed-002"))
        try FileManager.default.createDirectory(atPath: host.state + "/origins", withIntermediateDirectories: true)
        let older = "driver=i915\noverride=\nmoved-to=\nsriov-vfs=0\nsriov-autoprobe=1\n"
        #expect(symlink(older, host.state + "/origins/" + pf) == 0)
        #expect(host.runOnce())
        #expect(try record(host, pf) == older + "device=8086:56c0\n")
    }

    /// A device that left among events the daemon lost (the receive buffer overflowed) takes
    /// its record with it too; names the agent does not write (an upper-case address, a
    /// directory) are no records: neither removed nor said to be forgotten.
    @Test func originRecordsOfDevicesThatLeftAmongLostEventsAreDropped() throws {
        let host = try seed000()
        host.kernel.unplug(PCIAddress(nic)!)
        _ = host.kernel.drain()
        let upper = "0000:0B:00.0", directory = "0000:0c:00.0"
        #expect(symlink("driver=ice\noverride=\nmoved-to=vfio-pci\n", host.state + "/origins/" + upper) == 0)
        #expect(mkdir(host.state + "/origins/" + directory, 0o700) == 0)
        host.agent.handle(([], true))
        #expect(!host.originRecords.contains(nic))
        #expect(host.originRecords.count == 17)  // 15 records, and the two names that are none
        let forgot = host.log.containing("forgot where it came from")
        #expect(forgot.count == 1 && forgot[0].contains(nic), "\(forgot)")
    }

    /// A PF's SR-IOV state the agent set goes back when no policy wants the PF: the VF
    /// count it had and its autoprobe (found on a real kernel: VFs and autoprobe 0 stayed).
    @Test func removingAPFsPolicyPutsItsVFCountAndAutoprobeBack() throws {
        let host = try SimHost("seed-002-flex.json", policies: try SimHost.examplePolicy("seed-002"))
        #expect(host.runOnce())
        #expect(host.device("0000:4d:00.0")?.sriov?.count == 4)
        let record = try record(host, "0000:4d:00.0")
        #expect(record == "driver=i915\noverride=\nmoved-to=\nsriov-vfs=0\nsriov-autoprobe=1\ndevice=8086:56c0\n")
        host.agent.planner = Planner(policies: PolicySet([]))
        #expect(host.runOnce())
        let pf = try #require(host.device("0000:4d:00.0"))
        #expect(pf.sriov?.count == 0 && pf.sriov?.autoprobe == true && pf.driver == "i915")
        #expect(host.addresses { $0.physfn != nil }.isEmpty)
        #expect(host.originRecords.isEmpty)
    }

    @Test func aPFsVFCountStaysWhileAVMHoldsOneOfItsVFs() throws {
        let host = try SimHost("seed-002-flex.json", policies: try SimHost.examplePolicy("seed-002"))
        #expect(host.runOnce())
        let group = try #require(host.device("0000:4d:00.3")?.group)
        host.kernel.holdNode(group, pid: 31, command: "qemu-system-x86")
        host.agent.planner = Planner(policies: PolicySet([]))
        #expect(host.runOnce())
        #expect(host.device("0000:4d:00.0")?.sriov?.count == 4)
        #expect(host.device("0000:4d:00.3")?.driver == "vfio-pci")
        #expect(
            try host.planLines().contains(
                "  waiting: set sriov_numvfs to 0: /dev/vfio/\(group) is open by qemu-system-x86 (pid 31); changing "
                    + "the count would remove its VFs from under the VM"
            ))
        host.kernel.closeNode(group)
        #expect(host.runOnce())
        #expect(host.device("0000:4d:00.0")?.sriov?.count == 0)
    }
}
