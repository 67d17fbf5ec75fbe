/// Text as the kernel, setpci and NSS hold it: bytes. Swift compares, splits and cases
/// `String`s by grapheme clusters and Unicode's rules: a `/` and a combining mark after it
/// are one character, and so are `\r\n`; `é` equals `e` with a combining accent; a fullwidth
/// `０` is a hex digit, and `ſ` upper-cases to `S`. None of them does any of that, so paths,
/// kernel tables, the agent's records and the values policies name kernel things by are cut
/// and judged through these, never as characters.
extension StringProtocol where SubSequence == Substring {
    /// The pieces between `byte`s (a `/`, a newline, a space, a `:`, a NUL), as the kernel
    /// and the tables' writers cut them.
    @inlinable package func split(byte: UInt8, omittingEmptySubsequences: Bool = true) -> [Substring] {
        self[...].utf8.split(separator: byte, omittingEmptySubsequences: omittingEmptySubsequences).map {
            Substring($0)
        }
    }
}

extension StringProtocol {
    /// Whether the kernel takes it as an absolute path: its first byte is `/`.
    @inlinable package var isAbsolutePath: Bool { utf8.first == UInt8(ascii: "/") }

    /// Not empty, and every byte an ASCII decimal digit.
    @inlinable package var isASCIIDigits: Bool {
        !utf8.isEmpty && utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

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
