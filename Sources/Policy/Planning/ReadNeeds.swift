/// What the planner needs read for a device beyond its identity, given its policy.
public struct ReadNeeds: Sendable, Equatable {
    public var attributes: [AttributeWrite] = []
    public var config = false
    public var upstreamConfig = false
    public var sriov = false
    /// Whether the host uses the device (interfaces up, disks mounted or swapping).
    public var inUse = false
    /// Who holds its VFIO nodes (its VFs' for a PF): before an unbind from a VFIO driver, a
    /// return to the host driver, or a VF count change.
    public var holders = false
    /// Its iommufd device node, and who may open `/dev/iommu`: a device on a VFIO driver
    /// whose policy sets owner, group or mode.
    public var deviceNode = false
    /// The same for a PF, only when its VF count is not this one (changing it removes VFs).
    public var holdersUnlessVFCount: Int?
    /// Where the agent moved it from: for putting back a device no policy wants, and for
    /// the host drivers boot-config keeps off devices on vfio-pci or pci-stub.
    public var origin = false

    public init() {}
}

/// What the planner needs read about a view beyond what its snapshot holds: per device, and
/// the kernel's VFIO variants (for `driver = "vfio"`).
public struct ViewNeeds: Sendable, Equatable {
    public var devices: [PCIAddress: ReadNeeds] = [:]
    public var variants = false

    public init() {}
}
