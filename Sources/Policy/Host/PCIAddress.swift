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
        self.init(
            domain: domain, bus: UInt8((routingID >> 8) & 0xff),
            device: UInt8((routingID >> 3) & 0x1f), function: UInt8(routingID & 0x7))
    }

    public var routingID: Int { Int(bus) << 8 | Int(device) << 3 | Int(function) }

    /// One word for the hasher (four fields were four rounds): every view, cache and queue
    /// of the agent is keyed by address.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(UInt64(domain) << 16 | UInt64(routingID))
    }

    /// Parses the full sysfs form `dddd:bb:dd.f` (twelve characters); hex digits in any case.
    /// Works on the UTF-8 bytes directly, without allocating: it runs for every path and event.
    public init?(_ text: some StringProtocol) {
        let parsed =
            text.utf8.withContiguousStorageIfAvailable(PCIAddress.parse)
            ?? String(text).utf8.withContiguousStorageIfAvailable(PCIAddress.parse)
        guard let address = parsed ?? nil else { return nil }
        self = address
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> PCIAddress? {
        guard bytes.count == 12, bytes[4] == UInt8(ascii: ":"), bytes[7] == UInt8(ascii: ":"),
            bytes[10] == UInt8(ascii: ".")
        else { return nil }
        func field(_ range: Range<Int>) -> UInt32? {
            var value: UInt32 = 0
            for index in range {
                guard let digit = hexValue(bytes[index]) else { return nil }
                value = value << 4 | UInt32(digit)
            }
            return value
        }
        guard let domain = field(0..<4), let bus = field(5..<7), let device = field(8..<10),
            let function = field(11..<12),
            device < 32, function < 8
        else { return nil }
        return PCIAddress(domain: domain, bus: UInt8(bus), device: UInt8(device), function: UInt8(function))
    }

    public var description: String {
        guard domain <= 0xffff else {
            return hex(domain, width: 4) + ":" + hex(bus, width: 2) + ":" + hex(device, width: 2) + "."
                + String(function)
        }
        // Twelve bytes: a small string, built in place.
        return String(unsafeUninitializedCapacity: 12) { buffer in
            let digits: StaticString = "0123456789abcdef"
            func digit(_ value: UInt32) -> UInt8 { digits.utf8Start[Int(value & 0xf)] }
            buffer[0] = digit(domain >> 12)
            buffer[1] = digit(domain >> 8)
            buffer[2] = digit(domain >> 4)
            buffer[3] = digit(domain)
            buffer[4] = UInt8(ascii: ":")
            buffer[5] = digit(UInt32(bus) >> 4)
            buffer[6] = digit(UInt32(bus))
            buffer[7] = UInt8(ascii: ":")
            buffer[8] = digit(UInt32(device) >> 4)
            buffer[9] = digit(UInt32(device))
            buffer[10] = UInt8(ascii: ".")
            buffer[11] = digit(UInt32(function))
            return 12
        }
    }

    public static func < (a: PCIAddress, b: PCIAddress) -> Bool {
        (a.domain, a.routingID) < (b.domain, b.routingID)
    }
}

/// Zero-padded hex, lower-case as sysfs and lspci print it (upper-case as uevents do), built
/// in place: every path and uevent the agent and the simulated kernel make goes through here.
public func hex(_ value: some BinaryInteger, width: Int, uppercase: Bool = false) -> String {
    guard let bits = UInt64(exactly: value) else {
        let digits = String(value, radix: 16, uppercase: uppercase)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
    var count = 1
    while count < 16 && bits >> (4 * UInt64(count)) != 0 { count += 1 }
    count = max(count, width)
    return String(unsafeUninitializedCapacity: count) { buffer in
        let digits: StaticString = uppercase ? "0123456789ABCDEF" : "0123456789abcdef"
        var rest = bits
        for index in stride(from: count - 1, through: 0, by: -1) {
            buffer[index] = digits.utf8Start[Int(rest & 0xf)]
            rest >>= 4
        }
        return count
    }
}

/// The value of one ASCII hex digit.
@inline(__always)
package func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}
