/// What the planner sees of the host at one moment: the devices it plans for and their
/// IOMMU group peers, the registered PCI drivers, and the `/dev/vfio` group nodes.
public struct HostView: Sendable {
    public private(set) var devices: [PCIAddress: PCIDevice]
    public let drivers: Set<String>
    public private(set) var vfioNodes: [Int: NodeState]
    /// `/dev/iommu` (iommufd), when the kernel has it: who may open it read-write.
    public var iommu: IOMMUAccess?
    /// Whether `/dev/iommu` was looked at for this view: `iommu` nil then means the kernel
    /// has none, and it is not looked for again while the view is kept.
    public var iommuLooked = false
    /// The VFIO variant drivers the running kernel declares, for `driver = "vfio"`.
    public var variants = VFIOVariants()
    /// The VFIO drivers, as the kernel lists them where it was read.
    public var vfio = VFIODrivers()
    /// Devices sysfs lists whose files could not be read as the kernel writes them, with
    /// why: left out of the view, so one device shaped wrongly does not hide the others.
    public var unreadable: [PCIAddress: String] = [:]

    /// Whether a driver is a VFIO driver (see `VFIODrivers`).
    public func isVFIO(_ driver: String?) -> Bool { vfio.contains(driver) }

    /// Whether a group member on this driver leaves the group usable by a VM.
    public func keepsGroupViable(_ driver: String?) -> Bool { vfio.keepGroupViable(driver) }
    private var groups: [Int: [PCIAddress]]

    public init(devices: [PCIDevice], drivers: Set<String>, vfioNodes: [Int: NodeState], iommu: IOMMUAccess? = nil) {
        var byAddress = [PCIAddress: PCIDevice](minimumCapacity: devices.count)
        var groups: [Int: [PCIAddress]] = [:]
        for device in devices {
            byAddress[device.address] = device
            if let group = device.iommuGroup { groups[group, default: []].append(device.address) }
        }
        // Sorted in place: most views are one device, or one per group.
        for index in groups.indices where groups.values[index].count > 1 { groups.values[index].sort() }
        self.devices = byAddress
        self.drivers = drivers
        self.vfioNodes = vfioNodes
        self.iommu = iommu
        self.groups = groups
    }

    /// The devices of an IOMMU group, in address order.
    public func members(of group: Int) -> [PCIDevice] {
        (groups[group] ?? []).compactMap { devices[$0] }
    }

    public var groupNumbers: [Int] { groups.keys.sorted() }

    /// What `other` read beyond its snapshot (`/dev/iommu`, whether it looked for it, the
    /// kernel's VFIO variant drivers), kept in this one made from a newer snapshot.
    public mutating func keepReadings(of other: HostView) {
        iommu = other.iommu
        iommuLooked = other.iommuLooked
        variants = other.variants
    }

    /// The same view with `device` in place of the one at its address (or added); and
    /// `vfioNodes` and `iommu`, where given.
    public func replacing(
        _ device: PCIDevice, vfioNodes: [Int: NodeState]? = nil, iommu: IOMMUAccess?? = nil
    ) -> HostView {
        var view = self
        view.replace(device)
        if let vfioNodes { view.vfioNodes = vfioNodes }
        if let iommu { view.iommu = iommu }
        return view
    }

    /// Puts `device` in place of the one at its address (or adds it), its group's member
    /// list kept in address order.
    public mutating func replace(_ device: PCIDevice) {
        let previous = devices.updateValue(device, forKey: device.address)
        guard previous == nil || previous?.iommuGroup != device.iommuGroup else { return }
        if let group = previous?.iommuGroup {
            groups[group]?.removeAll { $0 == device.address }
            if groups[group]?.isEmpty == true { groups[group] = nil }
        }
        if let group = device.iommuGroup {
            groups[group, default: []].append(device.address)
            groups[group]!.sort()
        }
    }
}
