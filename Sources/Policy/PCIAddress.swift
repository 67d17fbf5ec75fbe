/// A PCI function address, `dddd:bb:dd.f` as sysfs names it (`0000:0b:00.0`).
public struct PCIAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let domain: UInt32
    public let bus: UInt8
    public let device: UInt8
    public let function: UInt8

    public init(domain: UInt32, bus: UInt8, device: UInt8, function: UInt8) {
        precondition(device < 32 && function < 8, "device or function out of range")
        self.domain = domain
        self.bus = bus
        self.device = device
        self.function = function
    }

    /// The routing ID (bus << 8 | devfn) that SR-IOV offsets are added to.
    public init(domain: UInt32, routingID: Int) {
        self.init(domain: domain, bus: UInt8((routingID >> 8) & 0xff),
                  device: UInt8((routingID >> 3) & 0x1f), function: UInt8(routingID & 0x7))
    }

    public var routingID: Int { Int(bus) << 8 | Int(device) << 3 | Int(function) }

    /// Parses the full sysfs form `dddd:bb:dd.f`; hex digits in any case.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2 else { return nil }
        let devfn = parts[2].split(separator: ".", omittingEmptySubsequences: false)
        guard devfn.count == 2, devfn[0].count == 2, devfn[1].count == 1,
              let domain = UInt32(parts[0], radix: 16), let bus = UInt8(parts[1], radix: 16),
              let device = UInt8(devfn[0], radix: 16), let function = UInt8(devfn[1], radix: 16),
              device < 32, function < 8
        else { return nil }
        self.init(domain: domain, bus: bus, device: device, function: function)
    }

    public var description: String {
        hex(domain, width: 4) + ":" + hex(bus, width: 2) + ":" + hex(device, width: 2) + "." + String(function)
    }

    public static func < (a: PCIAddress, b: PCIAddress) -> Bool {
        (a.domain, a.routingID) < (b.domain, b.routingID)
    }
}

/// Lower-case, zero-padded hex, as sysfs and lspci print it.
public func hex(_ value: some BinaryInteger, width: Int) -> String {
    let digits = String(value, radix: 16)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
}
