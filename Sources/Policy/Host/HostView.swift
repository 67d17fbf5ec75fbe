/// What the planner sees of the host at one moment: the devices it plans for and their
/// IOMMU group peers, the registered PCI drivers, and the `/dev/vfio` group nodes.
public struct HostView: Sendable {
    public let devices: [PCIAddress: PCIDevice]
    public let drivers: Set<String>
    public let vfioNodes: [Int: NodeState]
    /// `/dev/iommu` (iommufd), when the kernel has it: who may open it read-write.
    public var iommu: IOMMUAccess?
    /// The VFIO variant drivers the running kernel declares, for `driver = "vfio"`.
    public var variants = VFIOVariants()
    /// The drivers the kernel says are VFIO drivers: those of the modules built on
    /// vfio-pci-core (`/sys/module/vfio_pci_core/holders/`), where it was read.
    public var vfioDrivers: Set<String> = []

    /// Whether a driver is a VFIO driver, by what the kernel says, or else by its name.
    public func isVFIO(_ driver: String?) -> Bool {
        guard let driver else { return false }
        return vfioDrivers.contains(driver) || DriverKind.isVFIO(driver)
    }

    /// The same for group viability: a VFIO driver, pci-stub, pcieport or none.
    public func keepsGroupViable(_ driver: String?) -> Bool {
        isVFIO(driver) || DriverKind.keepsGroupViable(driver)
    }
    private let groups: [Int: [PCIAddress]]

    public init(devices: [PCIDevice], drivers: Set<String>, vfioNodes: [Int: NodeState], iommu: IOMMUAccess? = nil) {
        var byAddress: [PCIAddress: PCIDevice] = [:]
        var groups: [Int: [PCIAddress]] = [:]
        for device in devices {
            byAddress[device.address] = device
            if let group = device.iommuGroup { groups[group, default: []].append(device.address) }
        }
        self.devices = byAddress
        self.drivers = drivers
        self.vfioNodes = vfioNodes
        self.iommu = iommu
        self.groups = groups.mapValues { $0.sorted() }
    }

    /// The devices of an IOMMU group, in address order.
    public func members(of group: Int) -> [PCIDevice] {
        (groups[group] ?? []).compactMap { devices[$0] }
    }

    public var groupNumbers: [Int] { groups.keys.sorted() }
}
