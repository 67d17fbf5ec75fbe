/// Errors with their line and column, and the limits that refuse a text as it is read.
extension TOMLDocumentParser {
    /// An error at `offset` (the current position by default), with its line and column.
    func error(_ message: String, at offset: Int? = nil) -> TOML.SyntaxError {
        var offset = min(offset ?? at, bytes.count)
        // At the end of a text that ends with a newline: the end of its last line, not a
        // line after it.
        if offset == bytes.count, offset > 0, bytes[offset - 1] == ASCII.lineFeed {
            offset -= 1
            if offset > 0, bytes[offset - 1] == ASCII.carriageReturn { offset -= 1 }
        }
        var line = 1, lineStart = 0
        for index in 0..<offset where bytes[index] == ASCII.lineFeed { line += 1; lineStart = index + 1 }
        let column = 1 + bytes[lineStart..<offset].filter { $0 & 0xC0 != 0x80 }.count
        return TOML.SyntaxError(line: line, column: column, message: message)
    }

    /// A text past one of the limits, not against the grammar.
    func limit(_ message: String, at offset: Int? = nil) -> TOML.SyntaxError {
        var refusal = error(message, at: offset)
        refusal.isLimit = true
        return refusal
    }

    func tooDeep(at offset: Int? = nil) -> TOML.SyntaxError {
        limit("arrays or tables nested more than \(maxDepth) deep", at: offset)
    }

    func shown(_ byte: UInt8) -> String {
        byte >= 0x21 && byte < 0x7F
            ? "'\(Character(Unicode.Scalar(byte)))'"
            : byte == ASCII.space ? "a space" : "byte 0x\(String(byte, radix: 16))"
    }
}

/// A byte no comment or string may hold: C0 controls but tab, and DEL.
func isControl(_ byte: UInt8) -> Bool { (byte < 0x20 && byte != ASCII.tab) || byte == 0x7F }

func isBareKey(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
        true
    default: false
    }
}
