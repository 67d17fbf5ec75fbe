/// A vendor:device pair as the kernel reports it.
public struct PCIID: Hashable, Sendable, CustomStringConvertible {
    public let vendor: UInt16
    public let device: UInt16

    public init(vendor: UInt16, device: UInt16) {
        self.vendor = vendor
        self.device = device
    }

    /// Parses `vvvv:dddd` (exactly four hex digits each side, either case), byte by byte
    /// and without allocating: every device's identity is read through it.
    public init?(_ text: some StringProtocol) {
        let parsed =
            text.utf8.withContiguousStorageIfAvailable(PCIID.parse)
            ?? String(text).utf8.withContiguousStorageIfAvailable(PCIID.parse)
        guard let id = parsed ?? nil else { return nil }
        self = id
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> PCIID? {
        guard bytes.count == 9, bytes[4] == UInt8(ascii: ":") else { return nil }
        func half(_ start: Int) -> UInt16? {
            var value: UInt16 = 0
            for index in start..<start + 4 {
                guard let digit = hexValue(bytes[index]) else { return nil }
                value = value << 4 | UInt16(digit)
            }
            return value
        }
        guard let vendor = half(0), let device = half(5) else { return nil }
        return PCIID(vendor: vendor, device: device)
    }

    public var description: String { hex(vendor, width: 4) + ":" + hex(device, width: 4) }
}

/// An entry of `match.ids`, `match.subsystem-ids` or `match.pf-ids`: `vvvv:dddd`, where
/// `*` in place of either half matches any value. `nil` halves are wildcards.
public struct PCIIDPattern: Hashable, Sendable, CustomStringConvertible {
    public let vendor: UInt16?
    public let device: UInt16?

    public init(vendor: UInt16?, device: UInt16?) {
        self.vendor = vendor
        self.device = device
    }

    public init?(_ text: some StringProtocol) {
        let halves = text.split(separator: ":", omittingEmptySubsequences: false)
        guard halves.count == 2,
            let vendor = Self.half(halves[0]), let device = Self.half(halves[1])
        else { return nil }
        self.init(vendor: vendor.value, device: device.value)
    }

    /// `.some(nil)` for `*`, `.some(value)` for four hex digits, `nil` for anything else.
    private static func half(_ text: some StringProtocol) -> (value: UInt16?, Void)? {
        if text == "*" { return (nil, ()) }
        guard text.utf8.count == 4, text.isASCIIHexDigits, let value = UInt16(text, radix: 16)
        else { return nil }
        return (value, ())
    }

    public func matches(_ id: PCIID) -> Bool {
        (vendor == nil || vendor == id.vendor) && (device == nil || device == id.device)
    }

    public var description: String {
        (vendor.map { hex($0, width: 4) } ?? "*") + ":" + (device.map { hex($0, width: 4) } ?? "*")
    }
}
