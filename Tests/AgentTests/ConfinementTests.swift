import Foundation
import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Policy
import Testing

/// `sysfs` entries write only the device's own attributes: never another key's, never
/// another device's (a bridge's child, the PF, a VF, the bus), never a write-only one, and
/// never more than 256 per entry.
struct ConfinementTests {
    static let bridge = "0000:08:00.0"
    static let gpu = "0000:09:00.0"

    func parseErrors(_ entry: String) -> [String] {
        let toml = """
            [[policy]]
            name = "p"
            match.ids = ["1002:1479"]
            sysfs = [\(quoted(entry))]
            """
        return PolicyParser(accounts: TableAccounts(users: [:], groups: [:])).parse(toml, file: "p.toml").errors.map(
            \.description)
    }

    @Test(arguments: [
        ("driver_override=vfio-pci", "driver_override is controlled by the agent or another key"),
        ("driver/unbind=0000:09:00.0", "driver/… belongs to the driver key and the agent"),
        ("remove=1", "remove is controlled by the agent or another key"),
        ("rescan=1", "rescan is controlled by the agent or another key"),
        ("reset=1", "reset is controlled by the agent or another key"),
        ("config=0", "config is controlled by the agent or another key"),
        ("sriov_numvfs=4", "sriov_numvfs is controlled by the agent or another key"),
        ("sriov_drivers_autoprobe=0", "sriov_drivers_autoprobe is controlled by the agent or another key"),
        ("0000:09:00.0/driver_override=vfio-pci", "0000:09:00.0 is another PCI device"),
        ("0000:09:00.0/d3cold_allowed=0", "0000:09:00.0 is another PCI device"),
        ("physfn/reset_method=", "physfn leads to another device"),
        ("virtfn3/d3cold_allowed=0", "virtfn3 leads to another device"),
        ("subsystem/rescan=1", "subsystem leads to another device")
    ])
    func namesThatAreAnotherKeysOrAnotherDevicesAreErrorsOfTheFile(entry: String, why: String) {
        #expect(parseErrors(entry) == ["p.toml:4: sysfs: \(quoted(entry)): \(why)"])
    }

    @Test func aGlobNeverEntersAChildFunctionOrALink() throws {
        // The bridge above the boot GPU: its directory holds the GPU's and its links.
        let host = try SimHost(
            "seed-004-x570.json",
            policies: """
                [[policy]]
                name = "bridge"
                match.slots = ["\(Self.bridge)"]
                sysfs = ["*/d3cold_allowed=1", "*/reset_method=", "*/*/*/*=1"]
                """)
        #expect(host.runOnce())
        #expect(host.kernel.inspect(\.attributeWrites) == [])
        let gpu = try #require(host.device(Self.gpu))
        #expect(gpu.attributes["d3cold_allowed"] == "1" && gpu.attributes["reset_method"] == "flr bus")
        let lines = try host.planLines()
        #expect(!lines.contains { $0.contains("set ") && !$0.contains("refused") }, "\(lines)")
    }

    @Test func aNamedLinkOnTheWayIsRefusedWithItsName() throws {
        let host = try SimHost(
            "seed-004-x570.json",
            policies: """
                [[policy]]
                name = "gpu"
                match.slots = ["\(Self.gpu)"]
                allow-boot-vga = true
                sysfs = ["iommu_group/type=identity"]
                """)
        #expect(host.runOnce())
        #expect(host.kernel.inspect(\.attributeWrites) == [])
        #expect(
            try host.planLines().contains(
                "  refused: set iommu_group/type to \"identity\": iommu_group is a link out of the device directory"))
    }

    @Test func aGlobOverAPFsLinksStaysInsideThePF() throws {
        let host = try SimHost("seed-002-flex.json", policies: try SimHost.examplePolicy("seed-002"))
        #expect(host.runOnce())
        let before = host.kernel.inspect(\.attributeWrites)
        let walker = AttributeWalker(io: host.kernel, directory: host.kernel.paths.device(PCIAddress("0000:4d:00.0")!))
        let everything = walker.readings(for: try AttributeWrite.parse("*/*/*/*/*/*=1").get())
        // Only the PF's own nested attributes: none below a virtfnN, physfn or subsystem link.
        #expect(!everything.isEmpty)
        #expect(everything.allSatisfy { $0.path.hasPrefix("drm/") }, "\(everything.map(\.path))")
        #expect(host.kernel.inspect(\.attributeWrites) == before)
    }

    @Test func aWriteOnlyAttributeIsRefusedAndNeverWritten() throws {
        var description = try SimHost.load("seed-000-mi300x.json")
        let index = try #require(description.devices.firstIndex { $0.id == "1002:74a1" })
        description.devices[index].attributes?["reset_gpu"] = ""
        description.devices[index].writeOnly = ["reset_gpu"]
        let host = try SimHost(
            description,
            policies: """
                [[policy]]
                name = "poke"
                match.ids = ["1002:74a1"]
                sysfs = ["reset_gpu=1"]
                """)
        #expect(host.runOnce())
        #expect(host.runOnce())
        #expect(host.kernel.inspect(\.attributeWrites) == [])
        let address = description.devices[index].address
        #expect(
            try host.planLines().contains(
                "  refused: set reset_gpu to \"1\": it is write-only: it cannot be read back, so it would be written "
                    + "at every event"
            ), "\(address)")
    }

    @Test func anEntryMatchingMoreThan256AttributesIsRefusedWhole() throws {
        var description = try SimHost.load("seed-000-mi300x.json")
        let index = try #require(description.devices.firstIndex { $0.id == "1002:74a1" })
        for knob in 0..<300 { description.devices[index].attributes?["knobs/k\(knob)"] = "0" }
        let host = try SimHost(
            description,
            policies: """
                [[policy]]
                name = "knobs"
                match.ids = ["1002:74a1"]
                sysfs = ["knobs/k*=1", "knobs/k1*=1"]
                """)
        #expect(host.runOnce())
        let writes = host.kernel.inspect(\.attributeWrites).filter { $0.hasPrefix(description.devices[index].address) }
        // The narrow entry is written (k1, k10…k19, k100…k199), the wide one not at all.
        #expect(writes.count == 111, "\(writes)")
        #expect(try host.planLines().contains("  refused: set knobs/k* to \"1\": it matches more than 256 attributes"))
    }

    @Test func theExecutorRefusesAnotherDevicesPathWhateverAPlanSays() throws {
        let host = try SimHost("seed-004-x570.json", policies: "")
        let bridge = PCIAddress(Self.bridge)!
        for path in ["0000:09:00.0/d3cold_allowed", "driver/unbind", "subsystem/rescan", "driver_override", "remove"] {
            #expect(throws: AgentError.self) {
                try host.executor.perform(Step(.writeAttribute(path: path, value: "1"), reason: "test"), on: bridge)
            }
        }
        // Through the kernel's own resolution, a link is never followed either.
        #expect(throws: IOFailure.self) {
            try host.kernel.write(beneath: host.kernel.paths.device(bridge), "subsystem/rescan", "1")
        }
        #expect(host.kernel.inspect(\.attributeWrites) == [])
        #expect(host.device(Self.gpu)?.attributes["d3cold_allowed"] == "1")
    }
}

/// Child devices of other buses below a PCI function, on the real file layer as sysfs lays
/// them out: `usb1` (subsystem → bus/usb) below an xHCI controller and `host0`
/// (subsystem → bus/scsi) below an HBA are other devices; `drm/card0` (subsystem →
/// class/drm) is the device's own and stays writable.
struct ChildDeviceTests {
    static let xhci = "0000:0c:00.3"

    func tree() throws -> FakeSysfs {
        let tree = try FakeSysfs()
        try tree.device(Self.xhci, id: "1022:149c", class: "0x0c0330", group: 7)
        let dir = "/sys/bus/pci/devices/\(Self.xhci)"
        try tree.mkdir("\(dir)/usb1/1-1")
        try tree.link("\(dir)/usb1/subsystem", to: "../../../../bus/usb")
        try tree.link("\(dir)/usb1/1-1/subsystem", to: "../../../../../bus/usb")
        try tree.file("\(dir)/usb1/authorized", "1\n")
        try tree.file("\(dir)/usb1/1-1/authorized", "1\n")
        try tree.mkdir("\(dir)/host0")
        try tree.link("\(dir)/host0/subsystem", to: "../../../../bus/scsi")
        try tree.file("\(dir)/host0/state", "running\n")
        // Odd links that still lead to a bus, and a subsystem that is no link at all.
        for (name, target) in [("t_dot", "../../../../bus/usb/."), ("t_dd", "../../../../bus/usb/devices/..")] {
            try tree.mkdir("\(dir)/\(name)")
            try tree.link("\(dir)/\(name)/subsystem", to: target)
            try tree.file("\(dir)/\(name)/val", "1\n")
        }
        try tree.mkdir("\(dir)/t_file")
        try tree.file("\(dir)/t_file/subsystem", "usb\n")
        try tree.file("\(dir)/t_file/val", "1\n")
        try tree.mkdir("\(dir)/drm/card0/prelim_iov")
        try tree.link("\(dir)/drm/card0/subsystem", to: "../../../../../class/drm")
        try tree.file("\(dir)/drm/card0/prelim_iov/exec_quantum_ms", "10\n")
        try tree.mkdir("/p")
        try tree.file(
            "/p/50.toml",
            """
            [[policy]]
            name = "xhci"
            match.ids = ["1022:149c"]
            sysfs = ["usb1/authorized=0", "*/authorized=0", "*/*/authorized=0", "host0/state=offline",
                     "drm/card*/prelim_iov/exec_quantum_ms=20"]
            """)
        return tree
    }

    @Test func planRefusesAnotherBussDeviceAndKeepsTheClassDevice() throws {
        let tree = try tree()
        let result = try Binary.run(["plan", "--root", tree.root, "--policy-dir", tree.path("/p")])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("  refused: set usb1/authorized to \"0\": usb1 is a device of bus usb"), "\(lines)")
        #expect(lines.contains("  refused: set host0/state to \"offline\": host0 is a device of bus scsi"), "\(lines)")
        #expect(lines.contains("  set drm/card0/prelim_iov/exec_quantum_ms to \"20\": it shows \"10\""), "\(lines)")
        #expect(lines.contains("  refused: set */authorized: no such attribute below \(Self.xhci)"), "\(lines)")
        // The globs pass over the other buses' devices silently: nothing below usb1 is planned.
        #expect(!lines.contains { $0.contains("authorized") && !$0.contains("refused") }, "\(lines)")
    }

    @Test func theExecutorRefusesAPathThroughAnotherBussDeviceWhateverAPlanSays() throws {
        let tree = try tree()
        let paths = HostPaths(root: tree.root)
        let io = RealKernelIO(paths: paths)
        let executor = Executor(io: io, paths: paths, reader: SysfsReader(io: io, paths: paths), bindSettle: .zero)
        let address = try #require(PCIAddress(Self.xhci))
        for path in ["usb1/authorized", "usb1/1-1/authorized", "host0/state", "t_dot/val", "t_dd/val", "t_file/val"] {
            #expect(throws: AgentError.self) {
                try executor.perform(Step(.writeAttribute(path: path, value: "0"), reason: "test"), on: address)
            }
        }
        try executor.perform(
            Step(.writeAttribute(path: "drm/card0/prelim_iov/exec_quantum_ms", value: "20"), reason: "test"),
            on: address)
        let dir = "/sys/bus/pci/devices/\(Self.xhci)"
        #expect(try tree.read("\(dir)/usb1/authorized") == "1\n")
        #expect(try tree.read("\(dir)/usb1/1-1/authorized") == "1\n")
        #expect(try tree.read("\(dir)/host0/state") == "running\n")
        for name in ["t_dot", "t_dd", "t_file"] { #expect(try tree.read("\(dir)/\(name)/val") == "1\n") }
        #expect(try tree.read("\(dir)/drm/card0/prelim_iov/exec_quantum_ms") == "20\n")
    }
}
