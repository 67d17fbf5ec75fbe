import Glibc
import HostInterface
import Policy

/// Lays the simulated host out as files and links under a root, the way sysfs shows them:
/// device directories with their IDs, class, override, boot_vga and config space, the
/// `/sys/bus/pci/devices` links, driver, IOMMU group and physfn links, and the group and
/// driver directories. The real file layer reads it like a host's sysfs, so the bench can
/// run the real daemon (`run --root`) on thousands of devices.
package struct SysfsTree {
    let paths: HostPaths

    package init(paths: HostPaths) { self.paths = paths }

    package func write(_ state: SimulatedState) throws(IOFailure) {
        try makeDirectories(paths.pciDevices)
        try makeDirectories(paths.iommuGroups)
        // /proc as the host's initial PID namespace shows it, so the agent sees every process.
        try makeDirectories(paths.under("/proc/self/ns"))
        let namespace = paths.under("/proc/self/ns/pid")
        guard symlink(state.pidNamespace, namespace) == 0 || errno == EEXIST else {
            throw IOFailure(.write, namespace, value: state.pidNamespace, errno: .current)
        }
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
            if device.classCode >> 8 == 0x0300 { try file(directory + "/boot_vga", device.bootVGA ? "1\n" : "0\n") }
            try link(paths.device(address), to: directory)
            if let driver = device.driver { try link(directory + "/driver", to: paths.driver(driver)) }
            if let pf = device.physfn { try link(directory + "/physfn", to: paths.under("/sys" + state.devpath(pf))) }
            if let group = device.group {
                let groupDirectory = paths.iommuGroups + "/\(group)"
                try makeDirectories(groupDirectory + "/devices")
                try link(directory + "/iommu_group", to: groupDirectory)
                try link(groupDirectory + "/devices/\(address)", to: directory)
            }
        }
    }

    /// A policy file under the root's `/etc/hotplug-agent/policies.d`, where `run --root` looks.
    package func policy(_ name: String, _ text: String) throws(IOFailure) {
        let directory = paths.policyDirectories[0]
        try makeDirectories(directory)
        try file(directory + "/" + name, text)
    }

    private func file(_ path: String, _ text: String) throws(IOFailure) { try file(path, Array(text.utf8)) }

    private func file(_ path: String, _ data: [UInt8]) throws(IOFailure) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOFailure(.write, path, errno: .current) }
        defer { close(fd) }
        guard data.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == data.count else {
            throw IOFailure(.write, path, errno: .current)
        }
    }

    /// A relative link, as sysfs makes them (`../../../devices/pci0000:00/…`): the tree
    /// reads the same wherever it is mounted, `/sys` included.
    private func link(_ path: String, to target: String) throws(IOFailure) {
        let relative = Self.relative(target, from: path)
        guard symlink(relative, path) == 0 || errno == EEXIST else {
            throw IOFailure(.write, path, value: relative, errno: .current)
        }
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
