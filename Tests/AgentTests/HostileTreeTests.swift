import Foundation
import Glibc
import HostInterface
@testable import HotplugAgent
import Policy
import Synchronization
import Testing

/// A device directory shaped to hurt (the attacker of the one-look read): nothing in it
/// hangs the agent, leads a read or write out of it, or is taken half-read or by guess.
struct HostileTreeTests {
    let address = PCIAddress("0000:0b:00.0")!
    let dir = "/sys/bus/pci/devices/0000:0b:00.0"

    func reader(_ tree: FakeSysfs) -> SysfsReader {
        let paths = HostPaths(root: tree.root)
        return SysfsReader(io: RealKernelIO(paths: paths), paths: paths)
    }

    /// The device as read, or the error, from a thread: nil when it did not return in 10 s.
    func readWithin(_ tree: FakeSysfs) -> Result<PCIDevice, AgentError>? {
        let result = Mutex<Result<PCIDevice, AgentError>?>(nil)
        let reader = reader(tree)
        let address = address
        startThread {
            let outcome: Result<PCIDevice, AgentError>
            do throws(AgentError) { outcome = .success(try reader.device(address)) } catch { outcome = .failure(error) }
            result.withLock { $0 = outcome }
        }
        _ = waitFor(.seconds(10)) { result.withLock { $0 != nil } }
        return result.withLock { $0 }
    }

    @Test(arguments: ["uevent", "driver_override", "boot_vga"])
    func aFIFOWhereAFileShouldBeIsAnErrorNotAHang(_ name: String) throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:73bf", driver: "amdgpu", group: 20)
        unlink(tree.path("\(dir)/\(name)"))
        #expect(mkfifo(tree.path("\(dir)/\(name)"), 0o600) == 0)
        let outcome = try #require(readWithin(tree), "reading the device hung on a FIFO \(name)")
        // An empty uevent names no IDs: they come from the attribute files.
        if case .success(let device) = outcome { #expect(device.id == PCIID("1002:73bf"), "\(device)") }
    }

    @Test func anOverlongUeventIsRefusedNotCutShort() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:73bf", driver: "amdgpu", group: 20)
        // Cut at 1 MiB, the last line would read PCI_CLASS=1 (class 000001).
        let pad = "X=" + String(repeating: "A", count: (1 << 20) + 4096 - 30) + "\n"
        try tree.file("\(dir)/uevent", pad + "PCI_ID=1002:73BF\nPCI_CLASS=10802\n")
        #expect(throws: AgentError.io(IOFailure(.read, tree.path("\(dir)/uevent"), errno: .EFBIG))) {
            try reader(tree).device(address)
        }
    }

    /// The error names the line that says it again, or the value, and what was expected.
    @Test(arguments: [
        ("PCI_ID=1002:73BF\nPCI_CLASS=30000\nPCI_ID=DEAD:BEEF\n", "PCI_ID=DEAD:BEEF", "PCI_ID once"),
        ("PCI_ID=1002:73BF\nPCI_CLASS=+30000\n", "PCI_CLASS=+30000", "a 24-bit hex number"),
        ("PCI_ID=1002:73BF\nPCI_CLASS=30000\nPCI_CLASS=20000", "PCI_CLASS=20000", "PCI_CLASS once"),
        ("PCI_ID=1002:73BF\nPCI_CLASS=-0\n", "PCI_CLASS=-0", "a 24-bit hex number"),
        ("PCI_ID=10é2:73BF\nPCI_CLASS=30000\n", "PCI_ID=10é2:73BF", "VVVV:DDDD")
    ])
    func aUeventThatSaysTwoThingsOrSignsANumberIsMalformed(_ text: String, _ named: String, _ expected: String) throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:73bf", group: 20)
        try tree.file("\(dir)/uevent", text)
        #expect {
            try reader(tree).device(address)
        } throws: { error in
            guard case AgentError.malformed(let path, let value, let wanted) = error else { return false }
            return path.hasSuffix("/uevent") && value == named && wanted == expected
        }
    }

    @Test(arguments: ["+7", "07x", "7 ", "", "\u{0667}", "1234567890"])
    func aGroupLinkNotPlainDigitsIsMalformed(_ name: String) throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:73bf")
        try tree.link("\(dir)/iommu_group", to: "../../../kernel/iommu_groups/\(name)")
        #expect(throws: AgentError.self) { try reader(tree).device(address) }
    }

    /// A `driver` link ending in `..` would have the agent write `drivers/../unbind`.
    @Test func aDriverLinkThatIsNoDriversNameIsMalformed() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:73bf", group: 20)
        try tree.link("\(dir)/driver", to: "../../../bus/pci/drivers/..")
        #expect(
            throws: AgentError.malformed(path: tree.path("\(dir)/driver"), value: "..", expected: "a driver's name")
        ) { try reader(tree).device(address) }
        #expect(throws: AgentError.self) { try reader(tree).driver(of: address) }
    }

    /// The iommufd node's number is read below the device, never through a link out of it.
    @Test(.enabled(if: runningAsRoot, "mknod needs root"))
    func theDeviceNodesNumberIsNeverReadThroughALink() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:73bf", driver: "vfio-pci", group: 20)
        try tree.mkdir("/elsewhere/vfio0")
        try tree.file("/elsewhere/vfio0/dev", "1:3\n")
        try tree.mkdir("\(dir)/vfio-dev")
        try tree.link("\(dir)/vfio-dev/vfio0", to: tree.path("/elsewhere/vfio0"))
        try tree.mkdir("/dev/vfio/devices")
        try tree.characterNode("/dev/vfio/devices/vfio0")
        let paths = HostPaths(root: tree.root)
        let io = RealKernelIO(paths: paths)
        let executor = Executor(io: io, paths: paths, reader: SysfsReader(io: io, paths: paths), bindSettle: .zero)
        let step = Step(
            .setDeviceNodeAccess(name: "vfio0", owner: Account(id: 1000), nodeGroup: nil, mode: 0o660), reason: "test")
        #expect(throws: AgentError.self) { try executor.perform(step, on: address) }
        #expect(tree.stat("/dev/vfio/devices/vfio0").st_uid == 0)
    }

    /// One device shaped wrongly is named and left out; the others are planned and listed,
    /// `status` exits 3, and `cdi` prints the spec (0000:0b:00.0 is on vfio-pci, but no
    /// group node stands in this tree: listed by no name).
    @Test func oneDeviceThatCannotBeReadDoesNotHideTheOthers() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:73bf", driver: "vfio-pci", group: 20)
        try tree.device("0000:0c:00.0", id: "1002:73bf", driver: "amdgpu", group: 21)
        unlink(tree.path("/sys/bus/pci/devices/0000:0c:00.0/driver"))
        try tree.link("/sys/bus/pci/devices/0000:0c:00.0/driver", to: "../../../bus/pci/drivers/..")
        try tree.mkdir("/policies")
        try tree.file(
            "/policies/50.toml", "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:*\"]\ndriver = \"vfio-pci\"\n")
        let plan = try Binary.run(["plan", "--root", tree.root, "--policy-dir", tree.path("/policies")])
        #expect(plan.status == 0)
        #expect(plan.stdout.hasPrefix("0000:0b:00.0 [1002:73bf] class 030000, driver vfio-pci: policy \"gpu\""))
        #expect(!plan.stdout.contains("0000:0c:00.0"))
        #expect(plan.stderr.contains("0000:0c:00.0 cannot be read, left out: "), "\(plan.stderr)")

        let cdi = try Binary.run(["cdi", "--root", tree.root, "--policy-dir", tree.path("/policies")])
        #expect(cdi.status == 0 && cdi.stderr.contains("0000:0c:00.0 cannot be read"))
        let status = try Binary.run(["status", "--root", tree.root, "--policy-dir", tree.path("/policies")])
        #expect(status.status == 3 && status.stderr.contains("0000:0c:00.0 cannot be read, left out: "))

        let view = try reader(tree).fullView()
        #expect(view.devices.keys.map(\.description) == ["0000:0b:00.0"])
        #expect(view.unreadable.keys.map(\.description) == ["0000:0c:00.0"])
    }

    /// A tree built by hand whose uevent names no IDs (a test bed's, never a kernel's) is read
    /// from its attribute files, which the kernel shows the same values in; garbage there is
    /// an error naming the file, as in the uevent.
    @Test func aTreeWhoseUeventNamesNoIDsIsReadFromItsAttributeFiles() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:73bf", class: "0x030000", driver: "amdgpu", group: 20)
        try tree.file("\(dir)/uevent", "DRIVER=amdgpu\nPCI_SLOT_NAME=0000:0b:00.0\n")
        let device = try reader(tree).device(address)
        #expect(device.id == PCIID("1002:73bf") && device.classCode == 0x030000)
        #expect(device.subsystemID == PCIID("1002:0001") && device.iommuGroup == 20 && device.driver == "amdgpu")

        // Neither the uevent nor the files name them: named as unreadable, never passed over as gone.
        try tree.file("\(dir)/uevent", "")
        unlink(tree.path("\(dir)/vendor"))
        #expect(throws: AgentError.self) { try reader(tree).device(address) }
        #expect(try reader(tree).fullView().unreadable.keys.map(\.description) == ["0000:0b:00.0"])

        unlink(tree.path("\(dir)/uevent"))
        try tree.file("\(dir)/vendor", "0x1002\n")
        try tree.file("\(dir)/class", "+0x30000\n")
        #expect(
            throws: AgentError.malformed(
                path: tree.path("\(dir)/class"), value: "+0x30000", expected: "a 24-bit hex number")
        ) { try reader(tree).device(address) }
    }
}
