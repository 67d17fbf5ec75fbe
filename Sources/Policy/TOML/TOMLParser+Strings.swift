/// Strings: basic and literal, on one line or many, with their escapes.
extension TOMLDocumentParser {
    /// After the opening `"`: up to the closing one, escapes decoded, on one line.
    mutating func basicString() throws(TOML.SyntaxError) -> String {
        var out: [UInt8] = []
        while let byte = peek() {
            switch byte {
            case ASCII.quote: at += 1; return String(decoding: out, as: UTF8.self)
            case ASCII.backslash: try escape(into: &out)
            case ASCII.lineFeed, ASCII.carriageReturn: throw error("the string does not end on its line")
            default:
                if isControl(byte) { throw error("a control character in a string (write it as an escape)") }
                out.append(byte)
                at += 1
            }
        }
        throw error("the string does not end")
    }

    /// After the opening `'`: the text as written, on one line.
    mutating func literalString() throws(TOML.SyntaxError) -> String {
        let start = at
        while let byte = peek() {
            if byte == ASCII.apostrophe { at += 1; return String(decoding: bytes[start..<at - 1], as: UTF8.self) }
            if byte == ASCII.lineFeed || byte == ASCII.carriageReturn {
                throw error("the string does not end on its line")
            }
            if isControl(byte) { throw error("a control character in a string") }
            at += 1
        }
        throw error("the string does not end")
    }

    /// After `"""` or `'''`: a newline right after the opening is dropped; up to two quotes
    /// may stand right before the closing three. Basic ones take escapes and a backslash at
    /// the end of a line, which drops the newline and the blanks after it.
    mutating func multilineString(literal: Bool) throws(TOML.SyntaxError) -> String {
        let delimiter = literal ? ASCII.apostrophe : ASCII.quote
        if peek() == ASCII.lineFeed {
            at += 1
        } else if peek() == ASCII.carriageReturn && peek(1) == ASCII.lineFeed {
            at += 2
        }
        var out: [UInt8] = []
        while let byte = peek() {
            if byte == delimiter && peek(1) == delimiter && peek(2) == delimiter {
                var run = 3
                while peek(run) == delimiter { run += 1 }
                if run > 5 { throw error("too many quotes at the end of the string") }
                out.append(contentsOf: repeatElement(delimiter, count: run - 3))
                at += run
                return String(decoding: out, as: UTF8.self)
            }
            if byte == ASCII.backslash && !literal {
                var next = at + 1
                while next < bytes.count, bytes[next] == ASCII.space || bytes[next] == ASCII.tab { next += 1 }
                if next < bytes.count,
                    bytes[next] == ASCII.lineFeed
                        || (bytes[next] == ASCII.carriageReturn && next + 1 < bytes.count
                            && bytes[next + 1] == ASCII.lineFeed)
                {
                    at = next
                    while let blank = peek(),
                        blank == ASCII.space || blank == ASCII.tab || blank == ASCII.lineFeed
                            || (blank == ASCII.carriageReturn && peek(1) == ASCII.lineFeed)
                    {
                        at += 1
                    }
                    continue
                }
                try escape(into: &out)
                continue
            }
            if byte == ASCII.lineFeed { out.append(byte); at += 1; continue }
            if byte == ASCII.carriageReturn {
                guard peek(1) == ASCII.lineFeed else { throw error("a carriage return without a line feed") }
                out.append(contentsOf: [ASCII.carriageReturn, ASCII.lineFeed])
                at += 2
                continue
            }
            if isControl(byte) { throw error("a control character in a string") }
            out.append(byte)
            at += 1
        }
        throw error("the string does not end")
    }

    /// `\b \t \n \f \r \" \\ \uXXXX \UXXXXXXXX`; a code point must be a Unicode scalar.
    mutating func escape(into out: inout [UInt8]) throws(TOML.SyntaxError) {
        let start = at
        at += 1
        guard let letter = peek() else { throw error("the string does not end") }
        at += 1
        switch letter {
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "r"): out.append(0x0D)
        case ASCII.quote: out.append(ASCII.quote)
        case ASCII.backslash: out.append(ASCII.backslash)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let count = letter == UInt8(ascii: "u") ? 4 : 8
            var code: UInt32 = 0
            for _ in 0..<count {
                guard let byte = peek(), let digit = hexValue(byte) else {
                    throw error("\\\(Character(Unicode.Scalar(letter))) takes \(count) hex digits", at: start)
                }
                code = code << 4 | UInt32(digit)
                at += 1
            }
            guard let scalar = Unicode.Scalar(code) else {
                throw error("\\\(Character(Unicode.Scalar(letter))) names no Unicode scalar", at: start)
            }
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
        default:
            throw error("an invalid escape in a string", at: start)
        }
    }
}
