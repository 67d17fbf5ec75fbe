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
        guard let status = value(at: 0x06, width: 2), status & 0x10 != 0, var position = value(at: 0x34, width: 1)
        else { return nil }
        position &= 0xfc
        for _ in 0..<48 where position >= 0x40 {
            guard let found = value(at: Int(position), width: 1), let next = value(at: Int(position) + 1, width: 1)
            else { return nil }
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
            guard let found = extendedCapability(id) else {
                return .failure("extended capability \(hex(id, width: 4)) not found")
            }
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
