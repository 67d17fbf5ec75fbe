/// What sysfs shows of one PCI function at one moment: the planner's only input about it.
public struct PCIDevice: Sendable, Equatable {
    public var address: PCIAddress
    public var id: PCIID
    public var subsystemID: PCIID?
    /// The 24-bit class code (`class` attribute, `0x030000`).
    public var classCode: UInt32
    /// The driver bound right now (`driver` link), nil when unbound.
    public var driver: String?
    /// `driver_override`, nil when it reads `(null)`.
    public var driverOverride: String?
    public var bootVGA = false
    public var iommuGroup: Int?
    /// For an SR-IOV VF, its PF (`physfn` link).
    public var physfn: PCIAddress?
    /// For a VF, the PF's vendor:device.
    public var pfID: PCIID?
    /// Set when the device reads as a VF whose `physfn` link is not there yet: nothing is
    /// decided about it until the `change` that follows the links.
    public var vfPending = false

    /// The names in its `vfio-dev/` directory (`vfio3`): its iommufd device node's, where the
    /// kernel made one; empty off VFIO drivers.
    public var vfioDeviceNames: [String] = []

    // Read only when a policy needs them (see `ReadNeeds`), and kept in one shared box
    // (`Details`): a device is copied some fifty times in a claim (views, plans, the
    // ledger), and these ten fields, mostly empty, cost ten retains and releases each time.
    /// Config space bytes (256, or 4096 for PCIe).
    public var config: ConfigSpace? {
        get { details.value.config }
        set { changeDetails { $0.config = newValue } }
    }
    /// The ports between the device and its root port, nearest first.
    public var upstream: [UpstreamPort]? {
        get { details.value.upstream }
        set { changeDetails { $0.upstream = newValue } }
    }
    /// A PF's SR-IOV state; nil when the device has none (or it was not read).
    public var sriov: SRIOVState? {
        get { details.value.sriov }
        set { changeDetails { $0.sriov = newValue } }
    }
    /// Where the agent moved the device from, when it did (read from its state directory).
    public var origin: DriverOrigin? {
        get { details.value.origin }
        set { changeDetails { $0.origin = newValue } }
    }
    /// How the host uses the device now (`network interface eno1 is up`); empty when it
    /// does not, nil when it was not read.
    public var inUse: [String]? {
        get { details.value.inUse }
        set { changeDetails { $0.inUse = newValue } }
    }
    /// For a PF whose VF count would change: how the host uses its VFs, one line each
    /// (`VF 0000:4d:00.1: network interface eth3 is up`); nil when not read.
    public var vfsInUse: [String]? {
        get { details.value.vfsInUse }
        set { changeDetails { $0.vfsInUse = newValue } }
    }
    /// Its iommufd device node (`/dev/vfio/devices/vfioN`, named by `<device>/vfio-dev/vfioN`
    /// with a `dev` attribute) while on a VFIO driver; nil without one (or not read).
    public var deviceNode: DeviceNode? {
        get { details.value.deviceNode }
        set { changeDetails { $0.deviceNode = newValue } }
    }
    /// Who holds the device's VFIO nodes (or, for a PF, its VFs') open, one line each
    /// (`/dev/vfio/12 is open by qemu-system-x86 (pid 4242)`); nil when not read.
    public var heldBy: [String]? {
        get { details.value.heldBy }
        set { changeDetails { $0.heldBy = newValue } }
    }
    /// The processes of those lines, for the agent to watch them exit.
    public var holderPIDs: Set<Int32> {
        get { details.value.holderPIDs }
        set { changeDetails { $0.holderPIDs = newValue } }
    }
    /// For each `sysfs` entry of the policy (by its path pattern), what it found.
    public var attributes: [String: [AttributeReading]] {
        get { details.value.attributes }
        set { changeDetails { $0.attributes = newValue } }
    }

    private var details = DetailsBox.none

    /// The box never changes: a change makes a new one, which this device alone holds.
    private mutating func changeDetails(_ change: (inout Details) -> Void) {
        var value = details.value
        change(&value)
        details = DetailsBox(value)
    }

    public init(
        address: PCIAddress, id: PCIID, subsystemID: PCIID? = nil, classCode: UInt32,
        driver: String? = nil, driverOverride: String? = nil, bootVGA: Bool = false,
        iommuGroup: Int? = nil, physfn: PCIAddress? = nil, pfID: PCIID? = nil
    ) {
        self.address = address
        self.id = id
        self.subsystemID = subsystemID
        self.classCode = classCode
        self.driver = driver
        self.driverOverride = driverOverride
        self.bootVGA = bootVGA
        self.iommuGroup = iommuGroup
        self.physfn = physfn
        self.pfID = pfID
    }

    /// `modalias`, what `vfio_pci:` aliases are matched against: made from the IDs as the
    /// kernel makes it (nothing to read or keep per device); nil without subsystem IDs.
    public var modalias: String? {
        subsystemID.map { Self.modalias(id: id, subsystemID: $0, classCode: classCode) }
    }

    /// A PCI function's `modalias` as the kernel makes it from the IDs and the class bytes
    /// (drivers/pci/pci-sysfs.c): `pci:v000015B3d0000101Esv000015B3sd00000041bc02sc00i00`.
    public static func modalias(id: PCIID, subsystemID sub: PCIID, classCode: UInt32) -> String {
        func upper(_ value: some BinaryInteger, _ width: Int) -> String { hex(value, width: width).uppercased() }
        return "pci:v\(upper(id.vendor, 8))d\(upper(id.device, 8))sv\(upper(sub.vendor, 8))sd\(upper(sub.device, 8))"
            + "bc\(upper(classCode >> 16, 2))sc\(upper((classCode >> 8) & 0xff, 2))i\(upper(classCode & 0xff, 2))"
    }

    /// Bridges are never unbound or claimed: PCI-to-PCI (0604), and also host, ISA/LPC,
    /// CardBus and the other bridge subclasses up to 0609 that carry the host itself. Not
    /// 0680 ("other"), which includes NVSwitch, passed through to guests on HGX hosts.
    public static func isBridge(classCode: UInt32) -> Bool { (0x0600...0x0609).contains(classCode >> 8) }
    public var isBridge: Bool { Self.isBridge(classCode: classCode) }
    public var isVF: Bool { physfn != nil }
    /// A VGA-compatible display controller (class 0300): the only class the kernel gives
    /// a `boot_vga` attribute.
    public static func isVGA(classCode: UInt32) -> Bool { classCode >> 8 == 0x0300 }
    public var isVGA: Bool { Self.isVGA(classCode: classCode) }
    /// The class as six lower-case hex digits, as `match.class` compares it.
    public var classHex: String { hex(classCode, width: 6) }
}

/// The fields of a `PCIDevice` read only when a policy needs them.
private struct Details: Sendable, Equatable {
    var config: ConfigSpace?
    var upstream: [UpstreamPort]?
    var sriov: SRIOVState?
    var origin: DriverOrigin?
    var inUse: [String]?
    var vfsInUse: [String]?
    var deviceNode: DeviceNode?
    var heldBy: [String]?
    var holderPIDs: Set<Int32> = []
    var attributes: [String: [AttributeReading]] = [:]
}

/// `Details` shared by the copies of a device: one reference to copy, not ten.
private final class DetailsBox: Sendable, Equatable {
    let value: Details
    /// Nothing read yet: what every device starts with.
    static let none = DetailsBox(Details())

    init(_ value: Details) { self.value = value }

    static func == (lhs: DetailsBox, rhs: DetailsBox) -> Bool { lhs === rhs || lhs.value == rhs.value }
}
