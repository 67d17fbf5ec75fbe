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
    /// The `modalias` file, read only where the device shows no subsystem IDs to make it from
    /// (the kernel always shows them; a hand-made tree may not).
    public var shownModalias: String?
    /// Set when the device reads as a VF whose `physfn` link is not there yet: nothing is
    /// decided about it until the `change` that follows the links.
    public var vfPending = false

    // Read only when a policy needs them (see `ReadNeeds`).
    /// Config space bytes (256, or 4096 for PCIe).
    public var config: ConfigSpace?
    /// The ports between the device and its root port, nearest first.
    public var upstream: [UpstreamPort]?
    /// A PF's SR-IOV state; nil when the device has none (or it was not read).
    public var sriov: SRIOVState?
    /// Where the agent moved the device from, when it did (read from its state directory).
    public var origin: DriverOrigin?
    /// How the host uses the device now (`network interface eno1 is up`); empty when it
    /// does not, nil when it was not read.
    public var inUse: [String]?
    /// For a PF whose VF count would change: how the host uses its VFs, one line each
    /// (`VF 0000:4d:00.1: network interface eth3 is up`); nil when not read.
    public var vfsInUse: [String]?
    /// Its iommufd device node (`/dev/vfio/devices/vfioN`, named by `<device>/vfio-dev/vfioN`
    /// with a `dev` attribute) while on a VFIO driver; nil without one (or not read).
    public var deviceNode: DeviceNode?
    /// Who holds the device's VFIO nodes (or, for a PF, its VFs') open, one line each
    /// (`/dev/vfio/12 is open by qemu-system-x86 (pid 4242)`); nil when not read.
    public var heldBy: [String]?
    /// The processes of those lines, for the agent to watch them exit.
    public var holderPIDs: Set<Int32> = []
    /// For each `sysfs` entry of the policy (by its path pattern), what it found.
    public var attributes: [String: [AttributeReading]] = [:]

    public init(address: PCIAddress, id: PCIID, subsystemID: PCIID? = nil, classCode: UInt32,
                driver: String? = nil, driverOverride: String? = nil, bootVGA: Bool = false,
                iommuGroup: Int? = nil, physfn: PCIAddress? = nil, pfID: PCIID? = nil) {
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
    /// kernel makes it (nothing to read or keep per device), or, where no subsystem IDs are
    /// shown, what the `modalias` file says.
    public var modalias: String? {
        subsystemID.map { Self.modalias(id: id, subsystemID: $0, classCode: classCode) } ?? shownModalias
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
    public var isBridge: Bool { (0x0600...0x0609).contains(classCode >> 8) }
    public var isVF: Bool { physfn != nil }
    /// The class as six lower-case hex digits, as `match.class` compares it.
    public var classHex: String { hex(classCode, width: 6) }
}

/// A device's own VFIO node: its name below `/dev/vfio/devices` and what lstat shows.
/// The name is found only through the device (`<device>/vfio-dev/`): N is the lowest free
/// number, so it changes across unbind, rebind and boots.
public struct DeviceNode: Sendable, Equatable {
    public var name: String
    public var state: NodeState

    public init(name: String, state: NodeState) {
        self.name = name
        self.state = state
    }
}

/// Drivers a VM can use a group through.
public enum DriverKind {
    /// vfio-pci and its vendor variants (`mlx5_vfio_pci`, `nvgrace_gpu_vfio_pci`, …).
    public static func isVFIO(_ driver: String?) -> Bool {
        guard let driver else { return false }
        return driver == "vfio-pci" || driver.hasSuffix("_vfio_pci") || driver.hasSuffix("-vfio-pci")
    }

    /// A group is usable by a VM only when each member is on a VFIO driver, pci-stub,
    /// pcieport (bridges) or nothing.
    public static func keepsGroupViable(_ driver: String?) -> Bool {
        guard let driver else { return true }
        return isVFIO(driver) || driver == "pci-stub" || driver == "pcieport"
    }

    /// A name that can stand in `/sys/bus/pci/drivers/<name>` and on modprobe's command
    /// line: it starts with a letter or digit (never `-r`, `.` or `..`).
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, isAlphanumeric(first) else { return false }
        return name.utf8.count <= 64
            && name.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
                    || c == 0x2d || c == 0x5f || c == 0x2e
            }
    }

    private static func isAlphanumeric(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
    }
}

/// What a device had before the agent first changed it: its driver and override before a
/// move (and where it was moved to), and a PF's SR-IOV state before the agent set it.
public struct DriverOrigin: Sendable, Equatable {
    public var driver: String?
    public var override: String?
    /// Nil when the agent never moved the device's driver (it only changed SR-IOV).
    public var movedTo: String?
    public var sriov: SRIOVOrigin?

    public init(driver: String?, override: String?, movedTo: String?, sriov: SRIOVOrigin? = nil) {
        self.driver = driver
        self.override = override
        self.movedTo = movedTo
        self.sriov = sriov
    }
}

/// A PF's VF count and `sriov_drivers_autoprobe` before the agent first changed them.
public struct SRIOVOrigin: Sendable, Equatable {
    public var numVFs: Int
    public var autoprobe: Bool

    public init(numVFs: Int, autoprobe: Bool) {
        self.numVFs = numVFs
        self.autoprobe = autoprobe
    }
}
