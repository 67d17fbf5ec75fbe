import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Policy
import Testing

/// An agent killed at any moment, then restarted, ends where an uninterrupted run ends.
struct CrashTests {
    static let flexPolicies = """
        [[policy]]
        name = "flex-pf"
        match.ids = ["8086:56c0"]
        match.vf = false
        sriov.autoprobe = false
        sriov.num-vfs = 128
        [[policy]]
        name = "flex-vfs"
        match.pf-ids = ["8086:56c0"]
        driver = "vfio-pci"
        owner = "vmuser"
        group = "kvm"
        mode = "0660"
        """

    static func flexWith128VFs() throws -> HostDescription {
        var description = try SimHost.load("seed-002-flex.json")
        let pf = description.devices.firstIndex { $0.address == "0000:4d:00.0" }!
        description.devices[pf].sriov!.totalVFs = 128
        description.devices[pf].sriov!.pfAttributes = nil
        return description
    }

    /// Killed after this many sysfs writes: during the PF's setup, in the middle of the burst
    /// (between a VF's override and its probe, between a probe and its node), and near the end.
    @Test(arguments: [0, 1, 2, 3, 5, 50, 131, 200, 255, 257])
    func killedMidBurstAndRestartedEveryVFIsClaimedAndNoneEverHadAHostDriver(writes: Int) throws {
        let host = try SimHost(try Self.flexWith128VFs(), policies: Self.flexPolicies)
        host.kernel.freeze(afterWrites: writes)
        _ = host.runOnce()
        host.kernel.thaw()

        let restarted = try host.restarted(policies: Self.flexPolicies)
        #expect(restarted.runOnce(events: host.kernel))

        let vfs = host.addresses { $0.physfn != nil }
        #expect(vfs.count == 128)
        #expect(host.addresses { $0.physfn != nil && $0.driver == "vfio-pci" }.count == 128)
        for vf in vfs {
            let node = host.node(host.device(vf)!.group!)
            #expect(node?.uid == 1000 && node?.gid == 993 && node?.mode == 0o660, "\(vf)")
        }
        let binds = host.history.filter { $0.hasPrefix("bind") }
        #expect(binds.allSatisfy { $0.hasSuffix("vfio-pci") }, "a VF was bound to a host driver")
        #expect(Set(binds).count == binds.count, "a VF was bound twice")
        #expect(host.device("0000:4d:00.0")?.driver == "i915")
    }
}

/// Four PFs making 64 VFs each at once, with an event queue that overflows.
struct StormTests {
    static func fourFlexPFs(overflowAt capacity: Int?) throws -> SimHost {
        var description = try SimHost.load("seed-002-flex.json")
        let template = description.devices.first { $0.address == "0000:4d:00.0" }!
        description.devices.removeAll { $0.address == "0000:4d:00.0" }
        for (index, bus) in ["4d", "5d", "6d", "7d"].enumerated() {
            var pf = template
            pf.address = "0000:\(bus):00.0"
            pf.iommuGroup = 100 + index
            pf.sriov!.totalVFs = 64
            pf.sriov!.pfAttributes = nil
            description.devices.append(pf)
        }
        let host = try SimHost(
            description,
            policies: """
                [[policy]]
                name = "flex-vfs"
                match.pf-ids = ["8086:56c0"]
                driver = "vfio-pci"
                """)
        if let capacity { host.kernel.limitEventQueue(to: capacity) }
        return host
    }

    @Test(arguments: [nil, 100] as [Int?])
    func everyVFOfFourPFsIsClaimed(capacity: Int?) throws {
        let host = try Self.fourFlexPFs(overflowAt: capacity)
        #expect(host.runOnce())
        for bus in ["4d", "5d", "6d", "7d"] {
            try host.kernel.write("/sys/bus/pci/devices/0000:\(bus):00.0/sriov_drivers_autoprobe", "0")
        }
        for bus in ["4d", "5d", "6d", "7d"] {
            try host.kernel.write("/sys/bus/pci/devices/0000:\(bus):00.0/sriov_numvfs", "64")
        }
        host.deliverEvents()
        #expect(host.addresses { $0.physfn != nil }.count == 256)
        #expect(host.addresses { $0.physfn != nil && $0.driver == "vfio-pci" }.count == 256)
        #expect(host.history.filter { $0.hasPrefix("bind") }.allSatisfy { $0.hasSuffix("vfio-pci") })
        if capacity != nil {
            #expect(
                host.log.containing("events were lost (receive buffer overflow); reconciling every device").count == 1)
        }
    }
}
