/// Policy values that name what the kernel and setpci name (hex numbers, classes, slots,
/// capability names) are ASCII. Swift's `Character` properties and case mappings are
/// Unicode's: a fullwidth `０` is a hex digit, `ſ` upper-cases to `S` and `ı` to `I`, which
/// neither takes; such a value is refused, not read as another.
extension StringProtocol {
    /// Not empty, and every byte an ASCII hex digit.
    var isASCIIHexDigits: Bool { !utf8.isEmpty && utf8.allSatisfy { hexValue($0) != nil } }

    /// ASCII letters upper-cased; every other byte as it is.
    var asciiUppercased: String {
        String(decoding: utf8.map { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") ? $0 - 32 : $0 }, as: UTF8.self)
    }

    /// ASCII letters lower-cased; every other byte as it is.
    var asciiLowercased: String {
        String(decoding: utf8.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 + 32 : $0 }, as: UTF8.self)
    }
}
