import Policy

/// Every path the agent touches, derived from one root (`/` on a real host, a temporary
/// directory in tests), so nothing ever reaches the real `/sys` or `/dev` by accident.
struct HostPaths: Sendable {
    let root: String

    init(root: String = "/") {
        var root = root
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        self.root = root
    }

    /// `root` + an absolute path.
    func under(_ path: String) -> String { root == "/" ? path : root + path }

    var pciDevices: String { under("/sys/bus/pci/devices") }
    var pciDrivers: String { under("/sys/bus/pci/drivers") }
    var driversProbe: String { under("/sys/bus/pci/drivers_probe") }
    var iommuGroups: String { under("/sys/kernel/iommu_groups") }

    func device(_ address: PCIAddress) -> String { "\(pciDevices)/\(address)" }
    func attribute(_ address: PCIAddress, _ name: String) -> String { "\(pciDevices)/\(address)/\(name)" }
    func driver(_ name: String) -> String { "\(pciDrivers)/\(name)" }
    func iommuGroupDevices(_ group: Int) -> String { "\(iommuGroups)/\(group)/devices" }
    func vfioNode(_ group: Int) -> String { under("/dev/vfio/\(group)") }

    var classNet: String { under("/sys/class/net") }
    var classBlock: String { under("/sys/class/block") }
    var mountInfo: String { under("/proc/self/mountinfo") }
    var swaps: String { under("/proc/swaps") }

    var policyDirectories: [String] {
        [under("/etc/hotplug-agent/policies.d"), under("/usr/lib/hotplug-agent/policies.d")]
    }
    var passwd: String { under("/etc/passwd") }
    var stateDirectory: String { under("/run/hotplug-agent") }
    var groupFile: String { under("/etc/group") }
}
