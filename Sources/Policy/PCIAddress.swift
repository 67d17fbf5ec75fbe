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

    /// Parses the full sysfs form `dddd:bb:dd.f` (twelve characters); hex digits in any case.
    /// Works on the UTF-8 bytes directly: it runs for every path and event.
    public init?(_ text: some StringProtocol) {
        var bytes = text.utf8.makeIterator()
        var digits: [UInt8] = []
        digits.reserveCapacity(9)
        for position in 0..<12 {
            guard let byte = bytes.next() else { return nil }
            switch position {
            case 4, 7: guard byte == UInt8(ascii: ":") else { return nil }
            case 10: guard byte == UInt8(ascii: ".") else { return nil }
            default:
                guard let value = hexValue(byte) else { return nil }
                digits.append(value)
            }
        }
        guard bytes.next() == nil else { return nil }
        let domain = digits[0..<4].reduce(UInt32(0)) { $0 << 4 | UInt32($1) }
        let bus = digits[4] << 4 | digits[5]
        let device = digits[6] << 4 | digits[7]
        let function = digits[8]
        guard device < 32, function < 8 else { return nil }
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

/// The value of one ASCII hex digit.
@inline(__always)
func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}
