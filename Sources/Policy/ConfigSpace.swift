/// Reading a device's config space bytes as the kernel and setpci lay them out.
public struct ConfigSpace: Sendable, Equatable {
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Little-endian value of `width` bytes at `offset`, nil past the end.
    public func value(at offset: Int, width: Int) -> UInt32? {
        guard offset >= 0, offset + width <= bytes.count else { return nil }
        var value: UInt32 = 0
        for i in (0..<width).reversed() { value = value << 8 | UInt32(bytes[offset + i]) }
        return value
    }

    /// A VF's Vendor and Device ID registers read all ones (SR-IOV 1.1, 3.4.1.1), though
    /// sysfs shows the PF's IDs: how a VF looks before its `physfn` link exists.
    public var readsAsVF: Bool { value(at: 0, width: 4) == 0xffff_ffff }

    /// Offset of a standard capability (list from 0x34), as setpci walks it.
    public func capability(_ id: UInt8) -> Int? {
        guard let status = value(at: 0x06, width: 2), status & 0x10 != 0, var position = value(at: 0x34, width: 1) else { return nil }
        position &= 0xfc
        for _ in 0..<48 where position >= 0x40 {
            guard let found = value(at: Int(position), width: 1), let next = value(at: Int(position) + 1, width: 1) else { return nil }
            if found == UInt32(id) { return Int(position) }
            position = next & 0xfc
        }
        return nil
    }

    /// Offset of an extended capability (list from 0x100).
    public func extendedCapability(_ id: UInt16) -> Int? {
        var position = 0x100
        for _ in 0..<480 where position >= 0x100 {
            guard let header = value(at: position, width: 4), header != 0, header != 0xffff_ffff else { return nil }
            if header & 0xffff == UInt32(id) { return position }
            position = Int((header >> 20) & 0xffc)
        }
        return nil
    }

    /// The absolute offset a write addresses, or why it cannot be placed.
    public func resolve(_ write: ConfigWrite) -> Result<Int, PolicyMessage> {
        let base: Int
        switch write.base {
        case .absolute: base = 0
        case .capability(let id):
            guard let found = capability(id) else { return .failure("capability \(hex(id, width: 2)) not found") }
            base = found
        case .extendedCapability(let id):
            guard let found = extendedCapability(id) else { return .failure("extended capability \(hex(id, width: 4)) not found") }
            base = found
        }
        let offset = base + write.offset
        guard offset + write.width <= bytes.count else {
            return .failure("offset \(hex(offset, width: 2)) is past the \(bytes.count) bytes of config space")
        }
        return .success(offset)
    }

    // MARK: PCI Express

    public enum PortType: UInt8, Sendable {
        case endpoint = 0, legacyEndpoint = 1, rootPort = 4, upstreamPort = 5, downstreamPort = 6
        case pcieToPCIBridge = 7, pciToPCIeBridge = 8, integratedEndpoint = 9, eventCollector = 10
    }

    /// The Device/Port Type of the PCI Express capability; nil when the device is not PCIe.
    public var portType: PortType? {
        guard let cap = capability(0x10), let flags = value(at: cap + 2, width: 2) else { return nil }
        return PortType(rawValue: UInt8((flags >> 4) & 0xf))
    }

    /// Device Capabilities 2 and Device Control 2 of the PCI Express capability.
    public var deviceCapabilities2: UInt32? { capability(0x10).flatMap { value(at: $0 + 0x24, width: 4) } }
    public var deviceControl2: UInt32? { capability(0x10).flatMap { value(at: $0 + 0x28, width: 2) } }
}

/// A port between a device and its root port, nearest first, with its config space.
public struct UpstreamPort: Sendable, Equatable {
    public var address: PCIAddress
    public var config: ConfigSpace

    public init(address: PCIAddress, config: ConfigSpace) {
        self.address = address
        self.config = config
    }
}

/// A PF's SR-IOV attributes.
public struct SRIOVState: Sendable, Equatable {
    public var totalVFs: Int
    public var numVFs: Int
    public var autoprobe: Bool

    public init(totalVFs: Int, numVFs: Int, autoprobe: Bool) {
        self.totalVFs = totalVFs
        self.numVFs = numVFs
        self.autoprobe = autoprobe
    }
}

/// What one `sysfs` entry of a policy found below the device directory.
public struct AttributeReading: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        /// The attribute's contents.
        case value(String)
        /// It is not written, for this reason: another key's or the agent's, write-only, a
        /// link or another device on the way, too many matches.
        case refused(String)
    }

    /// The concrete path relative to the device directory (globs expanded).
    public var path: String
    public var state: State

    public init(path: String, state: State) {
        self.path = path
        self.state = state
    }
}

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
