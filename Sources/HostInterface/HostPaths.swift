import Glibc
import Policy

/// Every path the agent touches, derived from one root (`/` on a real host, a temporary
/// directory in tests), so nothing ever reaches the real `/sys` or `/dev` by accident.
package struct HostPaths: Sendable {
    package let root: String

    /// A relative root is taken relative to the working directory, never as `/`; empty and
    /// `.` components are dropped (`/a//t0/.` is `/a/t0`).
    package init(root: String = "/") {
        // On the `/` byte, as the kernel splits paths (see `TrustedPath.components`).
        let components = absolutePath(root).split(byte: UInt8(ascii: "/")).filter { $0 != "." }
        let root = "/" + components.joined(separator: "/"), base = root == "/" ? "" : root
        self.root = root
        (pciDevices, pciDrivers, iommuGroups) = (
            base + "/sys/bus/pci/devices", base + "/sys/bus/pci/drivers", base + "/sys/kernel/iommu_groups"
        )
    }

    /// `root` + an absolute path.
    package func under(_ path: String) -> String { root == "/" ? path : root + path }

    /// The root a path of the agent's is walked below: for its default place (`chosen` nil,
    /// a path under the root) the root, so that links in it resolve inside; for a path the
    /// caller named outright, `/`.
    package func walkRoot(chosen: String?) -> String { chosen == nil ? root : "/" }

    /// The directories every look starts from, made once.
    package let pciDevices: String, pciDrivers: String, iommuGroups: String
    package var driversProbe: String { under("/sys/bus/pci/drivers_probe") }

    package func device(_ address: PCIAddress) -> String { "\(pciDevices)/\(address)" }
    package func attribute(_ address: PCIAddress, _ name: String) -> String { "\(pciDevices)/\(address)/\(name)" }
    package func driver(_ name: String) -> String { "\(pciDrivers)/\(name)" }
    package func iommuGroupDevices(_ group: Int) -> String { "\(iommuGroups)/\(group)/devices" }
    package func vfioNode(_ group: Int) -> String { under("/dev/vfio/\(group)") }

    package var classNet: String { under("/sys/class/net") }
    package var classBlock: String { under("/sys/class/block") }
    package var mountInfo: String { under("/proc/self/mountinfo") }
    package var swaps: String { under("/proc/swaps") }

    package var policyDirectories: [String] {
        [under("/etc/hotplug-agent/policies.d"), under("/usr/lib/hotplug-agent/policies.d")]
    }
    package var passwd: String { under("/etc/passwd") }
    package var stateDirectory: String { under("/run/hotplug-agent") }
    package var groupFile: String { under("/etc/group") }
}

/// `path` made absolute against the working directory, as a user means a relative path on
/// the command line (`--root tree` is `$PWD/tree`; an empty path is the working directory).
package func absolutePath(_ path: String) -> String {
    if path.isAbsolutePath { return path }
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    // Without a working directory there is no safe answer: a path that cannot exist.
    guard getcwd(&buffer, buffer.count) != nil else { return "/nonexistent/" + path }
    let directory = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    if path.isEmpty || path == "." { return directory }
    return (directory == "/" ? "" : directory) + "/" + path
}
