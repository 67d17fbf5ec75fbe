import Foundation
import Glibc

/// A static sysfs and /dev tree in a temporary directory, for the real file layer and the
/// built binary. Nothing reacts to writes: these tests cover reading, refusing and the
/// node path, not the kernel (the simulated host covers that).
final class FakeSysfs {
    let root: String

    /// A tree in a new directory of `parent` (made where missing), `/tmp` by default.
    init(in parent: String = "/tmp") throws {
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        var template = Array((parent + "/hotplug-agent-test.XXXXXX").utf8CString)
        guard mkdtemp(&template) != nil else { throw POSIXError(.EIO) }
        root = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        try mkdir("/sys/bus/pci/devices")
        try mkdir("/sys/bus/pci/drivers")
        try mkdir("/sys/kernel/iommu_groups")
        try mkdir("/dev/vfio")
        try mkdir("/etc")
        try file(
            "/etc/passwd",
            "root:x:0:0::/root:/bin/sh\ncloud:x:1000:1000::/home/cloud:/bin/sh\n"
                + "qemu:x:107:107::/:/bin/false\nagd:x:1001:1001::/home/agd:/bin/sh\n"
        )
        try file("/etc/group", "root:x:0:\nkvm:x:993:cloud\n")
        // The host's own PID namespace, as /proc shows it there: the agent sees every process.
        try mkdir("/proc/self/ns")
        try link("/proc/self/ns/pid", to: "pid:[4026531836]")
    }

    deinit { _ = try? FileManager.default.removeItem(atPath: root) }

    func path(_ relative: String) -> String { root + relative }

    func mkdir(_ relative: String) throws {
        try FileManager.default.createDirectory(atPath: path(relative), withIntermediateDirectories: true)
    }

    func file(_ relative: String, _ contents: String) throws {
        try contents.write(toFile: path(relative), atomically: false, encoding: .utf8)
    }

    func read(_ relative: String) throws -> String { try String(contentsOfFile: path(relative), encoding: .utf8) }

    func link(_ relative: String, to target: String) throws {
        try FileManager.default.createSymbolicLink(atPath: path(relative), withDestinationPath: target)
    }

    /// A device as sysfs shows it: ID files, override, and driver and group links.
    func device(
        _ address: String, id: String, class classCode: String = "0x030000", driver: String? = nil, group: Int? = nil
    ) throws {
        let dir = "/sys/bus/pci/devices/\(address)"
        try mkdir(dir)
        let parts = id.split(separator: ":")
        try file("\(dir)/vendor", "0x\(parts[0])\n")
        try file("\(dir)/device", "0x\(parts[1])\n")
        try file("\(dir)/subsystem_vendor", "0x\(parts[0])\n")
        try file("\(dir)/subsystem_device", "0x0001\n")
        try file("\(dir)/class", "\(classCode)\n")
        try file("\(dir)/driver_override", "(null)\n")
        try file("\(dir)/enable", "0\n")
        try file("\(dir)/uevent", Self.uevent(address, id: id, class: classCode, driver: driver))
        if let driver {
            try mkdir("/sys/bus/pci/drivers/\(driver)")
            try link("\(dir)/driver", to: "../../../bus/pci/drivers/\(driver)")
        }
        if let group {
            try mkdir("/sys/kernel/iommu_groups/\(group)/devices")
            try link("\(dir)/iommu_group", to: "../../../kernel/iommu_groups/\(group)")
            try link(
                "/sys/kernel/iommu_groups/\(group)/devices/\(address)", to: "../../../../bus/pci/devices/\(address)")
        }
    }

    /// A PCI device's `uevent` file as the kernel words it (`PCI_CLASS=30000`, IDs in
    /// capitals, the driver first while bound).
    static func uevent(_ address: String, id: String, class classCode: String, driver: String?) -> String {
        let parts = id.uppercased().split(separator: ":")
        let code = UInt32(classCode.hasPrefix("0x") ? String(classCode.dropFirst(2)) : classCode, radix: 16) ?? 0
        let sub = "\(parts[0]):0001"
        let alias =
            "pci:v0000\(parts[0])d0000\(parts[1])sv0000\(parts[0])sd00000001"
            + "bc\(hex2(code >> 16))sc\(hex2(code >> 8 & 0xff))i\(hex2(code & 0xff))"
        return (driver.map { "DRIVER=\($0)\n" } ?? "") + "PCI_CLASS=\(String(code, radix: 16, uppercase: true))\n"
            + "PCI_ID=\(parts[0]):\(parts[1])\nPCI_SUBSYS_ID=\(sub)\nPCI_SLOT_NAME=\(address)\nMODALIAS=\(alias)\n"
    }

    private static func hex2(_ value: UInt32) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return text.count < 2 ? "0" + text : text
    }

    /// A real character device node (the same numbers as /dev/null); needs root.
    func characterNode(_ relative: String, mode: mode_t = 0o600) throws {
        guard Glibc.mknod(path(relative), S_IFCHR | mode, dev_t((1 << 8) | 3)) == 0 else { throw POSIXError(.EPERM) }
    }

    func stat(_ relative: String) -> stat {
        var st = Glibc.stat()
        _ = lstat(path(relative), &st)
        return st
    }
}

let runningAsRoot = getuid() == 0

/// `chattr FLAG PATH` (`+i`: nothing in a directory can be made, changed or removed, as on a
/// read-only mount, while it is still read); its exit status. ext4 and tmpfs have it; root.
func chattr(_ flag: String, _ path: String) throws -> Int32 {
    let process = try Process.run(URL(fileURLWithPath: "/usr/bin/chattr"), arguments: [flag, path])
    process.waitUntilExit()
    return process.terminationStatus
}
