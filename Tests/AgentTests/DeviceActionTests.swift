import Foundation
import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Policy
import Testing

struct SRIOVTests {
    let flex = "0000:4d:00.0"

    func hostDrivers(_ host: SimHost, _ address: String) -> [String] {
        host.history.filter { $0.contains(" \(address) ") && $0.hasPrefix("bind") }.map {
            String($0.split(separator: " ")[2])
        }
    }

    @Test func seed002MakesFourVFsThatNoHostDriverEverTouches() throws {
        let host = try SimHost("seed-002-flex.json", policies: try SimHost.examplePolicy("seed-002"))
        #expect(host.runOnce())
        let vfs = host.addresses { $0.physfn != nil }
        #expect(vfs == ["0000:4d:00.1", "0000:4d:00.2", "0000:4d:00.3", "0000:4d:00.4"])
        for vf in vfs {
            let device = try #require(host.device(vf))
            #expect(device.driver == "vfio-pci")
            #expect(hostDrivers(host, vf) == ["vfio-pci"], "\(vf) was bound to something else first")
            let node = try #require(host.node(device.group!))
            #expect(node.uid == 1000 && node.gid == 993 && node.mode == 0o660)
        }
        let pf = try #require(host.device(flex))
        #expect(pf.driver == "i915" && pf.sriov?.count == 4 && pf.sriov?.autoprobe == false)
        #expect(pf.attributes["drm/card1/prelim_iov/pf/gt/exec_quantum_ms"] == "20")
        #expect(pf.attributes["drm/card1/prelim_iov/pf/gt/preempt_timeout_us"] == "40000")
        // A PF whose VF count is already right is left alone.
        let settled = host.history
        #expect(host.runOnce())
        #expect(host.history == settled)
    }

    @Test func changingTheCountGoesThroughZero() throws {
        let first = try SimHost("seed-002-flex.json", policies: try SimHost.examplePolicy("seed-002"))
        #expect(first.runOnce())
        let fewer = try SimHost.examplePolicy("seed-002").replacingOccurrences(
            of: "sriov.num-vfs = 4", with: "sriov.num-vfs = 2")
        let parsed = PolicyParser(accounts: TableAccounts(users: ["vmuser": 1000], groups: ["kvm": 993])).parse(
            fewer, file: "p.toml")
        first.agent.planner = Planner(policies: PolicySet(parsed.policies))
        #expect(first.runOnce())
        #expect(first.addresses { $0.physfn != nil } == ["0000:4d:00.1", "0000:4d:00.2"])
        #expect(
            first.log.containing(
                "[flex-pf] set sriov_numvfs to 0: the kernel changes a nonzero VF count only through 0"
            ).count == 1)
    }

    @Test func aVFIsNotDecidedBeforeItsLinksExist() throws {
        // A PF policy that would take any 56c0 that is not a VF, and one for the VFs.
        let policies = """
            [[policy]]
            name = "not-vfs"
            match.ids = ["8086:56c0"]
            match.vf = false
            driver = "pci-stub"
            allow-boot-vga = true
            [[policy]]
            name = "vfs"
            match.vf = true
            driver = "vfio-pci"
            """
        let host = try SimHost("seed-002-flex.json", policies: policies)
        try host.kernel.write("/sys/bus/pci/devices/\(flex)/sriov_drivers_autoprobe", "0")
        host.kernel.holdVFLinks()
        try host.kernel.write("/sys/bus/pci/devices/\(flex)/sriov_numvfs", "2")
        let adds = host.kernel.drain()
        #expect(adds.events.filter { $0.action == "add" }.count == 2)
        // Between add and links the VFs look like 56c0 functions that are not VFs.
        host.agent.handle(adds)
        for vf in ["0000:4d:00.1", "0000:4d:00.2"] {
            #expect(host.device(vf)?.driver == nil && host.device(vf)?.override == nil, "\(vf) was decided on add")
            #expect(host.log.containing("\(vf) a VF whose SR-IOV links are not there yet").count >= 1)
        }
        host.kernel.releaseVFLinks()
        host.deliverEvents()
        #expect(host.addresses { $0.driver == "vfio-pci" } == ["0000:4d:00.1", "0000:4d:00.2"])
        #expect(host.history.allSatisfy { !$0.contains("pci-stub") || $0.contains(flex) })
    }

    @Test func aBurstOf128VFsIsClaimedWithoutLosingAnEvent() throws {
        var description = try SimHost.load("seed-002-flex.json")
        let pf = description.devices.firstIndex { $0.address == flex }!
        description.devices[pf].sriov!.totalVFs = 128
        description.devices[pf].sriov!.pfAttributes = nil
        let host = try SimHost(
            description,
            policies: """
                [[policy]]
                name = "flex-vfs"
                match.pf-ids = ["8086:56c0"]
                driver = "vfio-pci"
                owner = "vmuser"
                """)
        #expect(host.runOnce())
        // The admin makes 128 VFs by hand while the daemon runs.
        try host.kernel.write("/sys/bus/pci/devices/\(flex)/sriov_drivers_autoprobe", "0")
        try host.kernel.write("/sys/bus/pci/devices/\(flex)/sriov_numvfs", "128")
        let burst = host.kernel.drain()
        #expect(burst.events.filter { $0.action == "add" && $0.subsystem == "pci" }.count == 128)
        host.agent.handle(burst)
        let vfs = host.addresses { $0.physfn != nil }
        #expect(vfs.count == 128)
        #expect(vfs.last == "0000:4d:10.0")  // routing ID 0x4d00 + 1 + 127 carries into the device number
        #expect(host.addresses { $0.physfn != nil && $0.driver == "vfio-pci" }.count == 128)
        #expect(host.history.filter { $0.hasPrefix("bind") && !$0.hasSuffix("vfio-pci") }.isEmpty)
        #expect(host.log.containing("event add pci").count == 128)
        #expect(host.log.containing("lost").isEmpty)
        #expect(host.agent.failureCount == 0)
    }

    /// As the kernel numbers groups (`ida_alloc` in `iommu_group_alloc`, `ida_free` when the
    /// last device leaves): VFs destroyed and made again take the lowest free numbers, the
    /// ones just freed, and a group without devices is gone. Numbers that only grew made a
    /// host that churns VFs all day look like an ever larger one (the bench's growth).
    @Test func vfsMadeAgainReuseTheGroupNumbersTheKernelFreed() throws {
        // VFs claimed as they come; their number is the admin's.
        let host = try SimHost(
            "seed-002-flex.json",
            policies: """
                [[policy]]
                name = "flex-vfs"
                match.pf-ids = ["8086:56c0"]
                driver = "vfio-pci"
                """)
        #expect(host.runOnce())
        let numVFs = "/sys/bus/pci/devices/\(flex)/sriov_numvfs"
        try host.kernel.write("/sys/bus/pci/devices/\(flex)/sriov_drivers_autoprobe", "0")
        try host.kernel.write(numVFs, "4")
        host.deliverEvents()
        func groups() -> [Int] { host.addresses { $0.physfn != nil }.compactMap { host.device($0)?.group } }
        let first = groups(), listed = try host.kernel.list("/sys/kernel/iommu_groups")
        #expect(first.count == 4)
        for _ in 0..<3 {
            try host.kernel.write(numVFs, "0")
            host.deliverEvents()
            let left = try host.kernel.list("/sys/kernel/iommu_groups")
            #expect(Set(left) == Set(listed).subtracting(first.map(String.init)))
            try host.kernel.write(numVFs, "4")
            host.deliverEvents()
            #expect(groups() == first)
            #expect(try host.kernel.list("/sys/kernel/iommu_groups") == listed)
        }
        #expect(host.addresses { $0.physfn != nil && $0.driver == "vfio-pci" }.count == 4)
    }
}

struct ConfigSpaceTests {
    func config(_ host: SimHost, _ address: String) -> [UInt8] { host.device(address)!.config }

    @Test func seed001SetsBit6OfByte0x80OnBothCardsAndNothingElse() throws {
        let host = try SimHost("seed-001-fiji.json", policies: try SimHost.examplePolicy("seed-001"))
        let before = ["0000:0b:00.0", "0000:0c:00.0"].map { config(host, $0) }
        #expect(before[0][0x80] == 0x00 && before[0][0x58] == 0x10)
        #expect(host.runOnce())
        for (index, card) in ["0000:0b:00.0", "0000:0c:00.0"].enumerated() {
            let after = config(host, card)
            let changed = after.indices.filter { after[$0] != before[index][$0] }
            #expect(changed == [0x80], "\(card)")
            #expect(after[0x80] == 0x40)
            #expect(host.device(card)?.driver == "vfio-pci")
        }
    }

    @Test func aSwitchThatDoesNotRouteAtomicOpsLeavesEverythingAsItIsAndIsNamed() throws {
        let host = try SimHost("seed-001-fiji-no-atomics.json", policies: try SimHost.examplePolicy("seed-001"))
        let before = host.kernel.inspect { $0.devices.mapValues(\.config) }
        let lines = try host.planLines()
        #expect(
            lines.contains(
                "  refused: set AtomicOp Requester Enable: the path cannot carry AtomicOps: switch downstream port "
                    + "0000:0a:08.0 does not route them"
            ))
        #expect(
            lines.contains(
                "  refused: set AtomicOp Requester Enable: the path cannot carry AtomicOps: switch downstream port "
                    + "0000:0a:10.0 does not route them"
            ))
        #expect(host.runOnce())
        #expect(host.kernel.inspect { $0.devices.mapValues(\.config) } == before)
    }

    /// ROCm needs 64-bit AtomicOps: a root port completing only 32-bit ones (Device
    /// Capabilities 2 bit 7 without bit 8) cannot carry what amdgpu asks the kernel for.
    @Test(arguments: [(0x40 | 0x80, "only 32-bit"), (0x40 | 0x100, "only 64-bit"), (0x40, "no")])
    func aRootPortThatDoesNotCompleteBoth32And64BitAtomicOpsIsRefused(capabilities: Int, completes: String) throws {
        var description = try SimHost.load("seed-001-fiji.json")
        let index = try #require(description.devices.firstIndex { $0.address == "0000:00:03.1" })
        var bytes = try SimulatedKernel.configBytes(description.devices[index].config, PCIAddress("0000:00:03.1")!)
        let pcie = try #require(ConfigSpace(bytes).capability(0x10))
        for i in 0..<4 { bytes[pcie + 0x24 + i] = UInt8(truncatingIfNeeded: capabilities >> (8 * i)) }
        description.devices[index].config = bytes.map { hex($0, width: 2) }.joined(separator: " ")
        let host = try SimHost(description, policies: try SimHost.examplePolicy("seed-001"))
        let before = host.kernel.inspect { $0.devices.mapValues(\.config) }
        let lines = try host.planLines()
        #expect(
            lines.filter {
                $0
                    == "  refused: set AtomicOp Requester Enable: the path cannot carry AtomicOps: root port "
                        + "0000:00:03.1 completes \(completes) AtomicOps; both 32- and 64-bit are needed"
            }.count == 2, "\(lines)")
        #expect(host.runOnce())
        #expect(host.kernel.inspect { $0.devices.mapValues(\.config) } == before)
    }

    @Test(arguments: ["CAP_EXP+28.w=0040:0040", "80.b=40", "80.b=40:40", "cap10+28.b=40:40"])
    func everyFormGivesTheSameConfigSpaceOnTheSeedsCard(expression: String) throws {
        let host = try SimHost(
            "seed-001-fiji.json",
            policies: """
                [[policy]]
                name = "bit"
                match.slots = ["0000:0b:00.0"]
                config = ["\(expression)"]
                """)
        var expected = host.device("0000:0b:00.0")!.config
        expected[0x80] |= 0x40
        #expect(host.runOnce())
        #expect(host.device("0000:0b:00.0")!.config == expected)
    }

    @Test(arguments: ["CAP_EXP+28.w=0040:0040", "80.b=40:40"])
    func aMaskedWriteKeepsTheOtherBits(expression: String) throws {
        let host = try SimHost(
            "seed-001-fiji.json",
            policies: """
                [[policy]]
                name = "bit"
                match.slots = ["0000:0b:00.0"]
                config = ["\(expression)"]
                """)
        try host.kernel.writeBytes("/sys/bus/pci/devices/0000:0b:00.0/config", offset: 0x80, [0x05, 0x04])
        #expect(host.runOnce())
        #expect(Array(host.device("0000:0b:00.0")!.config[0x80...0x81]) == [0x45, 0x04])
    }

    @Test func aPlainWriteReplacesTheWholeWidth() throws {
        let host = try SimHost(
            "seed-001-fiji.json",
            policies: """
                [[policy]]
                name = "byte"
                match.slots = ["0000:0b:00.0"]
                config = ["80.b=40"]
                """)
        try host.kernel.writeBytes("/sys/bus/pci/devices/0000:0b:00.0/config", offset: 0x80, [0x05])
        #expect(host.runOnce())
        #expect(host.device("0000:0b:00.0")!.config[0x80] == 0x40)
    }

    @Test func aResetThatForgetsTheBitGetsItBackOnTheNextReconcile() throws {
        let host = try SimHost("seed-001-fiji.json", policies: try SimHost.examplePolicy("seed-001"))
        #expect(host.runOnce())
        _ = host.kernel.drain()
        try host.kernel.writeBytes("/sys/bus/pci/devices/0000:0b:00.0/config", offset: 0x80, [0x00])
        host.agent.handle(
            ([UEvent(action: "change", subsystem: "pci", devpath: "/devices/pci0000:00/0000:0b:00.0")], false))
        #expect(host.device("0000:0b:00.0")!.config[0x80] == 0x40)
    }

    @Test func lockdownIsReportedAsSuch() throws {
        let host = try SimHost("seed-001-fiji.json", policies: try SimHost.examplePolicy("seed-001"))
        host.kernel.setLockdown(true)
        #expect(!host.runOnce())
        let failure = try #require(
            host.log.containing("0000:0b:00.0 [fiji] failed: set config CAP_EXP+28.w=0040:0040").first)
        #expect(failure.hasSuffix("Operation not permitted (EPERM): kernel lockdown forbids config space writes"))
        #expect(failure.contains("write \"40 00 at 080\" to /sys/bus/pci/devices/0000:0b:00.0/config"))
    }
}

struct AttributeTests {
    @Test func emptyResetMethodDisablesEveryResetAndIsNotWrittenTwice() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        #expect(host.runOnce())
        let gpus = host.addresses { $0.id.device == 0x74a1 }
        #expect(gpus.count == 8)
        for gpu in gpus { #expect(host.device(gpu)?.attributes["reset_method"] == "") }
        #expect(host.log.containing("set reset_method to \"\": it shows \"flr bus\"").count == 8)
        #expect(host.runOnce())
        #expect(host.log.containing("set reset_method to").count == 8)
    }

    @Test func aWriteIsMadeAgainWhenSomethingRestoresTheValue() throws {
        let host = try SimHost("seed-003-power9.json", policies: try SimHost.examplePolicy("seed-003"))
        #expect(host.runOnce())
        #expect(host.device("0002:01:00.0")?.attributes["d3cold_allowed"] == "0")
        try host.kernel.write("/sys/bus/pci/devices/0002:01:00.0/d3cold_allowed", "1")
        try host.kernel.write("/sys/bus/pci/drivers/vfio-pci/unbind", "0002:01:00.0")
        host.deliverEvents()
        #expect(host.device("0002:01:00.0")?.attributes["d3cold_allowed"] == "0")
        #expect(host.device("0002:01:00.0")?.driver == "vfio-pci")
    }

    @Test func aFailedWriteNamesDeviceFileValueAndErrno() throws {
        let host = try SimHost(
            "seed-000-mi300x.json",
            policies: """
                [[policy]]
                name = "bad-reset"
                match.ids = ["1002:74a1"]
                sysfs = ["reset_method=warm"]
                """)
        #expect(!host.runOnce())
        #expect(
            host.log.containing(
                "error: 0000:12:00.0 [bad-reset] failed: set reset_method to \"warm\": write \"warm\\n\" to "
                    + "/sys/bus/pci/devices/0000:12:00.0/reset_method: Invalid argument (EINVAL)"
            ).count == 1)
    }

    @Test func globsExpandWithinOneComponentAndMissingAttributesAreReported() throws {
        let host = try SimHost(
            "seed-002-flex.json",
            policies: """
                [[policy]]
                name = "knobs"
                match.ids = ["8086:56c0"]
                sysfs = ["drm/card*/prelim_iov/pf/gt/*_spare=4096", "no_such_file=1"]
                """)
        #expect(host.runOnce())
        #expect(host.device("0000:4d:00.0")?.attributes["drm/card1/prelim_iov/pf/gt/lmem_spare"] == "4096")
        #expect(host.log.containing("refused: set no_such_file: no such attribute below 0000:4d:00.0").count >= 1)
    }
}
