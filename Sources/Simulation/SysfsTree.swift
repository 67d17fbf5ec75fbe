import Glibc
import HostInterface
import Policy

/// Lays the simulated host out as files and links under a root, the way sysfs shows them:
/// device directories with their IDs, class, override, boot_vga and config space, the
/// `/sys/bus/pci/devices` links, driver, IOMMU group and physfn links, and the group and
/// driver directories. The real file layer reads it like a host's sysfs, so the bench can
/// run the real daemon (`run --root`) on thousands of devices.
///
/// Written again over itself it changes only what differs (a file is rewritten in place and
/// keeps its inode, as a sysfs attribute does), so it can follow a simulated kernel. With
/// `mirrorsKernel` it also takes away what the state no longer has and lays out what the
/// agent's writes reach: the control files (`drivers_probe`, `bind`, `unbind`), the
/// `vfio-dev` entries and the `/dev/vfio` and `/dev/iommu` nodes (mknod, as root; nothing
/// opens them).
package struct SysfsTree {
    let paths: HostPaths
    let mirrorsKernel: Bool

    package init(paths: HostPaths, mirrorsKernel: Bool = false) {
        self.paths = paths
        self.mirrorsKernel = mirrorsKernel
    }

    package func write(_ state: SimulatedState) throws(IOFailure) {
        try makeDirectories(paths.pciDevices)
        try makeDirectories(paths.iommuGroups)
        // /proc as the host's initial PID namespace shows it, so the agent sees every process.
        try makeDirectories(paths.under("/proc/self/ns"))
        try link(paths.under("/proc/self/ns/pid"), text: state.pidNamespace)
        for name in state.drivers.keys where state.drivers[name]!.registered { try makeDirectories(paths.driver(name)) }
        for (address, device) in state.devices.sorted(by: { $0.key < $1.key }) {
            let directory = paths.under("/sys" + state.devpath(address))
            try makeDirectories(directory)
            let sub = device.subsystemID ?? PCIID(vendor: 0, device: 0)
            try file(directory + "/vendor", "0x" + hex(device.id.vendor, width: 4) + "\n")
            try file(directory + "/device", "0x" + hex(device.id.device, width: 4) + "\n")
            try file(directory + "/subsystem_vendor", "0x" + hex(sub.vendor, width: 4) + "\n")
            try file(directory + "/subsystem_device", "0x" + hex(sub.device, width: 4) + "\n")
            try file(directory + "/class", "0x" + hex(device.classCode, width: 6) + "\n")
            try file(directory + "/driver_override", (device.override ?? "(null)") + "\n")
            try file(directory + "/enable", state.isOpenThroughVFIO(device) ? "1\n" : "0\n")
            try file(directory + "/modalias", device.modalias + "\n")
            try file(directory + "/uevent", state.ueventText(address))
            try file(directory + "/config", device.config)
            if PCIDevice.isVGA(classCode: device.classCode) {
                try file(directory + "/boot_vga", device.bootVGA ? "1\n" : "0\n")
            }
            try link(paths.device(address), to: directory)
            try link(directory + "/driver", to: device.driver.map { paths.driver($0) })
            try link(directory + "/physfn", to: device.physfn.map { paths.under("/sys" + state.devpath($0)) })
            if let group = device.group {
                let groupDirectory = paths.iommuGroups + "/\(group)"
                try makeDirectories(groupDirectory + "/devices")
                try link(directory + "/iommu_group", to: groupDirectory)
                try link(groupDirectory + "/devices/\(address)", to: directory)
            }
            if mirrorsKernel { try vfioDevice(directory, device.deviceNode) }
        }
        if mirrorsKernel { try mirror(state) }
    }

    /// A policy file under the root's `/etc/hotplug-agent/policies.d`, where `run --root` looks.
    package func policy(_ name: String, _ text: String) throws(IOFailure) {
        let directory = paths.policyDirectories[0]
        try makeDirectories(directory)
        try file(directory + "/" + name, text)
    }

    /// What only a mirror of a kernel needs: devices gone, control files, `/dev` nodes.
    private func mirror(_ state: SimulatedState) throws(IOFailure) {
        for name in names(in: paths.pciDevices) {
            guard let address = PCIAddress(name), state.devices[address] == nil else { continue }
            for group in names(in: paths.iommuGroups) {
                try remove(paths.iommuGroups + "/\(group)/devices/\(name)")
            }
            if let directory = realPath(paths.device(address)) { try remove(directory) }
            try remove(paths.device(address))
        }
        try file(paths.driversProbe, "")
        for name in state.drivers.keys where state.drivers[name]!.registered {
            try file(paths.driver(name) + "/bind", "")
            try file(paths.driver(name) + "/unbind", "")
        }
        try makeDirectories(paths.under("/dev/vfio/devices"))
        for (group, node) in state.nodes {
            try self.node(paths.vfioNode(group), SimulatedState.vfioDeviceNumber(group), node)
        }
        for (number, node) in state.deviceNodes {
            try self.node(paths.under("/dev/vfio/devices/vfio\(number)"), SimulatedState.deviceNodeNumber(number), node)
        }
        for name in names(in: paths.under("/dev/vfio")) where Int(name).map({ state.nodes[$0] == nil }) ?? false {
            try remove(paths.under("/dev/vfio/" + name))
        }
        for name in names(in: paths.under("/dev/vfio/devices")) {
            guard let number = Int(name.dropFirst(4)), state.deviceNodes[number] == nil else { continue }
            try remove(paths.under("/dev/vfio/devices/" + name))
        }
        // Its ACL is the agent's to write; the mirror only makes the node.
        if let iommu = state.iommu {
            try node(paths.under("/dev/iommu"), deviceNumber(major: 10, minor: 123), iommu.node, owning: false)
        }
    }

    /// `vfio-dev/vfioN/dev` while the device has an iommufd node; nothing there otherwise.
    private func vfioDevice(_ directory: String, _ number: Int?) throws(IOFailure) {
        let entries = directory + "/vfio-dev"
        for name in names(in: entries) where name != number.map({ "vfio\($0)" }) { try remove(entries + "/" + name) }
        guard let number else { return }
        let device = SimulatedState.deviceNodeNumber(number)
        try makeDirectories(entries + "/vfio\(number)")
        try file(entries + "/vfio\(number)/dev", "\(major(device)):\(minor(device))\n")
    }

    /// A character device node with the state's owner, group and mode.
    private func node(
        _ path: String, _ number: UInt64, _ node: SimulatedState.Node, owning: Bool = true
    ) throws(IOFailure) {
        var st = stat()
        if lstat(path, &st) != 0 || st.st_mode & S_IFMT != S_IFCHR || UInt64(st.st_rdev) != number {
            try remove(path)
            guard mknod(path, S_IFCHR | mode_t(node.mode), dev_t(number)) == 0 else {
                throw IOFailure(.write, path, errno: .current)
            }
        }
        guard owning else { return }
        guard chown(path, node.uid, node.gid) == 0, chmod(path, mode_t(node.mode)) == 0 else {
            throw IOFailure(.write, path, errno: .current)
        }
    }

    private func file(_ path: String, _ text: String) throws(IOFailure) { try file(path, Array(text.utf8)) }

    /// The file with these contents, written only when it reads otherwise (in place).
    private func file(_ path: String, _ data: [UInt8]) throws(IOFailure) {
        let old = open(path, O_RDONLY | O_CLOEXEC)
        if old >= 0 {
            let same = (try? readAll(from: old, limit: data.count + 1)) == data
            close(old)
            if same { return }
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOFailure(.write, path, errno: .current) }
        defer { close(fd) }
        guard data.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == data.count else {
            throw IOFailure(.write, path, errno: .current)
        }
    }

    /// A relative link, as sysfs makes them (`../../../devices/pci0000:00/…`): the tree
    /// reads the same wherever it is mounted, `/sys` included. No target: no link.
    private func link(_ path: String, to target: String?) throws(IOFailure) {
        try link(path, text: target.map { Self.relative($0, from: path) })
    }

    private func link(_ path: String, text: String?) throws(IOFailure) {
        let now = try? readSymbolicLink(path)
        guard now != text else { return }
        if now != nil || text == nil { try remove(path) }
        guard let text else { return }
        guard symlink(text, path) == 0 else { throw IOFailure(.write, path, value: text, errno: .current) }
    }

    /// `target` as seen from the directory holding `link` (both absolute, no `.` or `..`).
    static func relative(_ target: String, from link: String) -> String {
        let from = link.split(separator: "/").dropLast(), to = target.split(separator: "/")
        let common = zip(from, to).prefix { $0 == $1 }.count
        return (Array(repeating: "..", count: from.count - common) + to.dropFirst(common).map(String.init)).joined(
            separator: "/")
    }
}

/// `mkdir -p`: each missing directory of the absolute `path`, made with `mode` (a tree the
/// lab lays out for itself; the agent's own writes go through `writeFileAtomically`).
func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(IOFailure) {
    var prefix = ""
    for component in path.split(separator: "/") {
        prefix += "/" + component
        if mkdir(prefix, mode) != 0 && errno != EEXIST { throw IOFailure(.write, prefix, errno: .current) }
    }
}

/// The names in a directory of the lab's own tree; none when it is not there.
private func names(in directory: String) -> [String] {
    let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0, let entries = DirectoryEntries(closing: fd) else { return [] }
    return entries.names
}

private func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// `rm -rf` of a path in the lab's own tree, without a process (a mirror's work is kept
/// apart from the agent's system calls by thread, and a child would be counted).
private func remove(_ path: String) throws(IOFailure) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if st.st_mode & S_IFMT == S_IFDIR {
        for name in names(in: path) { try remove(path + "/" + name) }
        guard rmdir(path) == 0 else { throw IOFailure(.write, path, errno: .current) }
    } else {
        guard unlink(path) == 0 else { throw IOFailure(.write, path, errno: .current) }
    }
}

private func major(_ device: UInt64) -> UInt64 { ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfff) }
private func minor(_ device: UInt64) -> UInt64 { (device & 0xff) | ((device >> 12) & ~0xff) }
