/// The limits every policy file is held to before any TOML parser sees it, so that checking
/// a file takes bounded time and memory whatever it holds.
public enum PolicyText {
    /// Larger files are refused unread past this many bytes.
    public static let maxBytes = 1 << 20
    /// Arrays and tables (headers, dotted keys, inline tables) nested deeper are refused.
    public static let maxDepth = 32
    /// Files with more values (strings, numbers, lists, tables) are refused: policies need
    /// a few hundred, and a parsed document's memory grows with every value, so this
    /// bounds what checking a file may cost.
    public static let maxValues = 10_000

    /// Why `bytes` cannot be a policy file at all, with the line and column where that is
    /// known: too large, a NUL byte, invalid UTF-8. Nil when the text may be parsed.
    public static func problem(in bytes: some Collection<UInt8>) -> (line: Int?, message: String)? {
        if bytes.count > maxBytes {
            return (nil, "the file is larger than 1 MiB (\(bytes.count) bytes); refused unread")
        }
        var line = 1, column = 1
        var iterator = bytes.makeIterator()
        // UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates, nothing past U+10FFFF.
        while let byte = iterator.next() {
            let at = (line, column)
            if byte == 0 { return (at.0, "invalid TOML: a NUL byte (column \(at.1))") }
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
                continue
            }
            column += 1
            guard byte >= 0x80 else { continue }
            let (count, low, high): (Int, UInt8, UInt8)
            switch byte {
            case 0xc2...0xdf: (count, low, high) = (1, 0x80, 0xbf)
            case 0xe0: (count, low, high) = (2, 0xa0, 0xbf)
            case 0xed: (count, low, high) = (2, 0x80, 0x9f)
            case 0xe1...0xef: (count, low, high) = (2, 0x80, 0xbf)
            case 0xf0: (count, low, high) = (3, 0x90, 0xbf)
            case 0xf4: (count, low, high) = (3, 0x80, 0x8f)
            case 0xf1...0xf3: (count, low, high) = (3, 0x80, 0xbf)
            default: return (at.0, "invalid TOML: invalid UTF-8 (column \(at.1))")
            }
            for position in 0..<count {
                guard let next = iterator.next(),
                      position == 0 ? (low...high).contains(next) : (0x80...0xbf).contains(next)
                else { return (at.0, "invalid TOML: invalid UTF-8 (column \(at.1))") }
            }
        }
        return nil
    }

    /// Whether a string value holds a control character other than tab (written raw or as
    /// an escape): no key of a policy takes one.
    public static func hasControlCharacter(_ text: String) -> Bool {
        text.unicodeScalars.contains { isControl($0) && $0 != "\t" }
    }
}

/// C0 and C1 control characters and DEL.
@inline(__always)
func isControl(_ scalar: Unicode.Scalar) -> Bool {
    scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value)
}

/// Characters that are not control characters but still break or reorder a printed line:
/// the line and paragraph separators (U+2028, U+2029, line breaks to many viewers) and the
/// bidirectional marks, embeddings, overrides and isolates (a U+202E turns what follows
/// around on the screen).
@inline(__always)
func isLineBreakingOrBidi(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x061C, 0x200E, 0x200F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: true
    default: false
    }
}

/// Whether a character printed raw could break, reorder or command a terminal line.
public func breaksAPrintedLine(_ scalar: Unicode.Scalar) -> Bool { isControl(scalar) || isLineBreakingOrBidi(scalar) }

/// Text from files or the kernel, safe to print on one line: control characters (a
/// newline, an escape sequence) become `\n`, `\t`, `\r` or `\xNN`, and line separators and
/// bidirectional controls `\u{NNNN}`, so one line stays one line, reads in its own order,
/// and nothing reaches the terminal as a command.
public func escapingControlCharacters(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: breaksAPrintedLine) else { return text }
    var out = ""
    out.reserveCapacity(text.utf8.count + 8)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if isControl(scalar) {
                out += "\\x" + hex(scalar.value, width: 2)
            } else if isLineBreakingOrBidi(scalar) {
                out += "\\u{" + hex(scalar.value, width: 4) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out
}
