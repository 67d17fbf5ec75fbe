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

/// Owner, group and permission bits of a `/dev/vfio/<group>` node, as lstat shows them.
public struct NodeState: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var mode: UInt16
    public var isCharacterDevice: Bool

    public init(uid: UInt32, gid: UInt32, mode: UInt16, isCharacterDevice: Bool = true) {
        self.uid = uid
        self.gid = gid
        self.mode = mode
        self.isCharacterDevice = isCharacterDevice
    }

    public var description: String { "\(uid):\(gid) \(octal(mode))" }
}

/// `0660`.
public func octal(_ mode: UInt16) -> String {
    let digits = String(mode, radix: 8)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

/// Who can open `/dev/iommu` read-write, as its mode and POSIX ACL say: the users and
/// groups with read and write (the owner, the owning group and named entries, within the
/// ACL's mask), or everyone.
public struct IOMMUAccess: Sendable, Equatable {
    public var users: Set<UInt32>
    public var groups: Set<UInt32>
    public var everyone: Bool

    public init(users: Set<UInt32>, groups: Set<UInt32>, everyone: Bool = false) {
        self.users = users
        self.groups = groups
        self.everyone = everyone
    }

    public func userCanOpen(_ uid: UInt32) -> Bool { everyone || users.contains(uid) }
    public func groupCanOpen(_ gid: UInt32) -> Bool { everyone || groups.contains(gid) }
}
