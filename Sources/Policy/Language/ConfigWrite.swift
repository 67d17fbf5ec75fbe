/// A setpci-style masked write to PCI config space: `REG.W=VALUE[:MASK]`.
///
/// REG is a hex offset, or a capability (`CAP_EXP+28`, `ECAP_ACS+4`, `CAP10+28`) found by
/// walking the device's capability lists when the write is applied. Only the bits in MASK
/// change; the rest are read and written back.
public struct ConfigWrite: Sendable, Equatable, CustomStringConvertible {
    public enum Base: Sendable, Equatable {
        case absolute
        /// A standard capability (list from 0x34, IDs below 0x100).
        case capability(UInt8)
        /// An extended capability (list from 0x100, IDs below 0x1000).
        case extendedCapability(UInt16)
    }

    public var base: Base
    public var offset: Int
    /// 1, 2 or 4 bytes.
    public var width: Int
    public var value: UInt32
    public var mask: UInt32
    /// The expression as written, for messages.
    public var text: String

    public var description: String { text }

    /// Parses one expression, with setpci's rules: names in any case, hex numbers, the
    /// final offset aligned to the width and inside 4096 bytes, values that fit the width.
    public static func parse(_ text: String) -> Result<ConfigWrite, PolicyMessage> {
        func fail(_ why: String) -> Result<ConfigWrite, PolicyMessage> { .failure("\(quoted(text)): \(why)") }

        guard let equals = text.firstIndex(of: "=") else { return fail("expected REG.W=VALUE[:MASK]") }
        let lhs = text[..<equals]
        let rhs = text[text.index(after: equals)...]
        guard let dot = lhs.lastIndex(of: ".") else { return fail("missing width (.b, .w or .l)") }
        let widthText = lhs[lhs.index(after: dot)...].asciiLowercased
        let width: Int
        switch widthText {
        case "b": width = 1
        case "w": width = 2
        case "l": width = 4
        default: return fail("invalid width \"\(widthText)\" (use b, w or l)")
        }

        let register = lhs[..<dot]
        let baseText: Substring
        var offset = 0
        if let plus = register.firstIndex(of: "+") {
            baseText = register[..<plus]
            guard let off = hexNumber(register[register.index(after: plus)...]), off < 0x1000 else {
                return fail("invalid offset \"\(register[register.index(after: plus)...])\"")
            }
            offset = Int(off)
        } else {
            baseText = register
        }
        let base: Base
        let upper = baseText.asciiUppercased
        // An ASCII name only: a dictionary's keys match canonically equal strings (a Kelvin
        // sign is a `K` to it).
        if upper.utf8.allSatisfy({ $0 < 0x80 }), let named = capabilityNames[upper] {
            base = named
        } else if upper.hasPrefix("ECAP"), let id = hexNumber(baseText.dropFirst(4)), id < 0x1000 {
            base = .extendedCapability(UInt16(id))
        } else if upper.hasPrefix("CAP"), let id = hexNumber(baseText.dropFirst(3)), id < 0x100 {
            base = .capability(UInt8(id))
        } else if let absolute = hexNumber(baseText) {
            guard absolute < 0x1000 else { return fail("register \(baseText) is out of range") }
            base = .absolute
            offset += Int(absolute)
        } else {
            return fail("unknown register \"\(baseText)\"")
        }
        if offset + width > 0x1000 { return fail("register \(hex(offset, width: 2)) is out of range") }
        if offset % width != 0 { return fail("unaligned register address \(hex(offset, width: 2))") }

        let limit: UInt32 = width == 4 ? .max : (1 << (8 * UInt32(width))) - 1
        let valueText: Substring
        var mask = limit
        if let colon = rhs.firstIndex(of: ":") {
            valueText = rhs[..<colon]
            let maskText = rhs[rhs.index(after: colon)...]
            guard let m = hexNumber(maskText) else { return fail("invalid mask \"\(maskText)\"") }
            guard m <= limit else { return fail("mask \"\(maskText)\" is out of range") }
            mask = m
        } else {
            valueText = rhs
        }
        guard let value = hexNumber(valueText) else { return fail("invalid value \"\(valueText)\"") }
        guard value <= limit else { return fail("value \"\(valueText)\" is out of range") }
        return .success(
            ConfigWrite(base: base, offset: offset, width: width, value: value & mask, mask: mask, text: text))
    }

    /// setpci's capability names (`setpci --dumpregs`).
    static let capabilityNames: [String: Base] = {
        let standard = [
            "PM": 0x01, "AGP": 0x02, "VPD": 0x03, "SLOTID": 0x04, "MSI": 0x05, "CHSWP": 0x06,
            "PCIX": 0x07, "HT": 0x08, "VNDR": 0x09, "DBG": 0x0a, "CCRC": 0x0b, "HOTPLUG": 0x0c,
            "SSVID": 0x0d, "AGP3": 0x0e, "SECURE": 0x0f, "EXP": 0x10, "MSIX": 0x11, "SATA": 0x12,
            "AF": 0x13, "EA": 0x14
        ]
        let extended = [
            "AER": 0x01, "VC": 0x02, "DSN": 0x03, "PB": 0x04, "RCLINK": 0x05, "RCILINK": 0x06,
            "RCEC": 0x07, "MFVC": 0x08, "VC2": 0x09, "RBCB": 0x0a, "VNDR": 0x0b, "ACS": 0x0d,
            "ARI": 0x0e, "ATS": 0x0f, "SRIOV": 0x10, "MRIOV": 0x11, "MCAST": 0x12, "PRI": 0x13,
            "REBAR": 0x15, "DPA": 0x16, "TPH": 0x17, "LTR": 0x18, "SECPCI": 0x19, "PMUX": 0x1a,
            "PASID": 0x1b, "LNR": 0x1c, "DPC": 0x1d, "L1PM": 0x1e, "PTM": 0x1f, "M_PCIE": 0x20,
            "FRS": 0x21, "RTR": 0x22, "DVSEC": 0x23, "VF_REBAR": 0x24, "DLNK": 0x25, "16GT": 0x26,
            "LMR": 0x27, "HIER_ID": 0x28, "NPEM": 0x29, "32GT": 0x2a, "IDE": 0x30, "64GT": 0x31
        ]
        var names: [String: Base] = [:]
        for (name, id) in standard { names["CAP_" + name] = .capability(UInt8(id)) }
        for (name, id) in extended { names["ECAP_" + name] = .extendedCapability(UInt16(id)) }
        return names
    }()
}

/// A non-empty run of hex digits (no sign, no `0x`), as setpci's strtoul(…, 16) takes it.
func hexNumber(_ text: some StringProtocol) -> UInt32? {
    guard text.utf8.count <= 8, text.isASCIIHexDigits else { return nil }
    return UInt32(text, radix: 16)
}
