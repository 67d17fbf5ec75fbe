extension TOML {
    /// Parses a whole TOML 1.0 document, or says where and why it is not one.
    ///
    /// Bounded whatever the text holds: one pass over the bytes (each byte looked at a
    /// fixed number of times), recursion only into nested arrays and inline tables, nothing
    /// nested deeper than `maxDepth` (tables by headers or dotted keys count too) and no
    /// more than `maxValues` values (a table header counts as one). What it keeps is the
    /// text's own pieces once each and a line number per key and list element, so its
    /// memory is a small multiple of the text's size whatever the text's shape.
    public static func parse(
        _ text: String, maxDepth: Int = PolicyText.maxDepth,
        maxValues: Int = PolicyText.maxValues
    ) throws(SyntaxError) -> Table {
        var parser = TOMLDocumentParser(bytes: Array(text.utf8), maxDepth: maxDepth, maxValues: maxValues)
        return try parser.document()
    }
}

/// The bytes TOML's grammar turns on.
enum ASCII {
    static let quote = UInt8(ascii: "\""), apostrophe = UInt8(ascii: "'"), backslash = UInt8(ascii: "\\")
    static let lineFeed = UInt8(ascii: "\n"), carriageReturn = UInt8(ascii: "\r"), hash = UInt8(ascii: "#")
    static let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t")
}

/// The reader: lines, keys, lists and inline tables here; strings, numbers and dates in
/// TOMLParser+Scalars; what tables may be defined where in `TOMLTables`.
struct TOMLDocumentParser {
    let bytes: [UInt8]
    let maxDepth: Int
    let maxValues: Int
    var at = 0
    var tables: TOMLTables
    /// Values read so far, against `maxValues`.
    var values = 0
    /// Where lines were last counted to: positions are asked for in the order the text is
    /// read, so counting lines costs one pass in all.
    var counted = (offset: 0, line: 1)

    init(bytes: [UInt8], maxDepth: Int, maxValues: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        self.maxValues = maxValues
        tables = TOMLTables(maxDepth: maxDepth)
    }

    /// The line the reader is on.
    mutating func lineHere() -> Int {
        if at < counted.offset { counted = (0, 1) }
        var (offset, line) = counted
        while offset < at {
            if bytes[offset] == ASCII.lineFeed { line += 1 }
            offset += 1
        }
        counted = (offset, line)
        return line
    }

    /// Counts one more value, refusing the text past `maxValues`.
    mutating func countValue() throws(TOML.SyntaxError) {
        values += 1
        if values > maxValues {
            throw limit("more than \(maxValues) values; a policy file needs far fewer")
        }
    }

    mutating func document() throws(TOML.SyntaxError) -> TOML.Table {
        while true {
            skipSpaces()
            guard let byte = peek() else { break }
            switch byte {
            case ASCII.hash, ASCII.lineFeed, ASCII.carriageReturn: try endOfLine()
            case UInt8(ascii: "["): try header()
            default:
                let start = at, line = lineHere()
                let keys = try key()
                let depth = tables.depthOfCurrent + keys.count - 1
                if depth > maxDepth { throw tooDeep(at: start) }
                let (value, elementLines) = try valueAfterEquals(depth: depth)
                if let problem = tables.assign(keys, value, line: line, elementLines: elementLines) {
                    throw error(problem, at: start)
                }
                try endOfLine()
            }
        }
        return tables.build()
    }

    // MARK: Lines, spaces, comments

    func peek(_ offset: Int = 0) -> UInt8? { at + offset < bytes.count ? bytes[at + offset] : nil }

    mutating func skipSpaces() { while let byte = peek(), byte == ASCII.space || byte == ASCII.tab { at += 1 } }

    /// Spaces, an optional comment, then a newline or the end of the text.
    mutating func endOfLine() throws(TOML.SyntaxError) {
        skipSpaces()
        if peek() == ASCII.hash { try comment() }
        guard let byte = peek() else { return }
        if byte == ASCII.lineFeed { at += 1; return }
        if byte == ASCII.carriageReturn, peek(1) == ASCII.lineFeed { at += 2; return }
        if byte == ASCII.carriageReturn { throw error("a carriage return without a line feed") }
        throw error("expected the end of the line, found \(shown(byte))")
    }

    mutating func comment() throws(TOML.SyntaxError) {
        at += 1
        while let byte = peek(), byte != ASCII.lineFeed {
            if byte == ASCII.carriageReturn && peek(1) == ASCII.lineFeed { return }
            if isControl(byte) { throw error("a control character in a comment") }
            at += 1
        }
    }

    /// Spaces, newlines and comments, as arrays allow between their values.
    mutating func skipBlank() throws(TOML.SyntaxError) {
        while let byte = peek() {
            if byte == ASCII.space || byte == ASCII.tab || byte == ASCII.lineFeed {
                at += 1
            } else if byte == ASCII.carriageReturn && peek(1) == ASCII.lineFeed {
                at += 2
            } else if byte == ASCII.hash {
                try comment()
            } else {
                return
            }
        }
    }

    // MARK: Headers and keys

    mutating func header() throws(TOML.SyntaxError) {
        let start = at, line = lineHere()
        // A table counts as a value: a file of headers alone costs as much as one of values.
        try countValue()
        at += 1
        let isArray = peek() == UInt8(ascii: "[")
        if isArray { at += 1 }
        skipSpaces()
        if peek() == nil || peek() == ASCII.lineFeed || peek() == ASCII.carriageReturn {
            throw error("expected a table name after '['")
        }
        let keys = try key()
        if keys.count > maxDepth { throw tooDeep(at: start) }
        try expect("]", "expected ']' to close the table header")
        if isArray { try expect("]", "expected ']]' to close the array-of-tables header") }
        if let problem = tables.open(keys, array: isArray, line: line) { throw error(problem, at: start) }
        try endOfLine()
    }

    /// A dotted key: simple keys joined by dots, spaces allowed around each; one of more
    /// parts than tables may nest is refused as soon as it has them.
    mutating func key() throws(TOML.SyntaxError) -> [String] {
        var parts: [String] = []
        while true {
            skipSpaces()
            parts.append(try simpleKey())
            skipSpaces()
            guard peek() == UInt8(ascii: ".") else { return parts }
            if parts.count >= maxDepth { throw tooDeep() }
            at += 1
        }
    }

    mutating func simpleKey() throws(TOML.SyntaxError) -> String {
        switch peek() {
        case ASCII.quote: at += 1; return try basicString()
        case ASCII.apostrophe: at += 1; return try literalString()
        default:
            let start = at
            while let byte = peek(), isBareKey(byte) { at += 1 }
            guard at > start else {
                throw error(peek().map { "expected a key, found \(shown($0))" } ?? "expected a key")
            }
            return String(decoding: bytes[start..<at], as: UTF8.self)
        }
    }

    mutating func expect(_ character: Unicode.Scalar, _ message: String) throws(TOML.SyntaxError) {
        skipSpaces()
        guard peek() == UInt8(ascii: character) else { throw error(message) }
        at += 1
    }

    // MARK: Values

    /// The value after `key =`, and the line of each element when it is a list.
    mutating func valueAfterEquals(depth: Int) throws(TOML.SyntaxError) -> (TOML.Value, [Int]) {
        try expect("=", "expected '=' after the key")
        skipSpaces()
        guard peek() == UInt8(ascii: "[") else { return (try value(depth: depth), []) }
        try countValue()
        var lines: [Int]? = []
        let list = try array(depth: depth + 1, elementLines: &lines)
        return (list, lines ?? [])
    }

    /// A value whose container sits at `depth` (the root table is 0).
    mutating func value(depth: Int) throws(TOML.SyntaxError) -> TOML.Value {
        guard let byte = peek() else { throw error("expected a value") }
        try countValue()
        switch byte {
        case ASCII.quote:
            if peek(1) == ASCII.quote && peek(2) == ASCII.quote {
                at += 3; return .string(try multilineString(literal: false))
            }
            at += 1
            return .string(try basicString())
        case ASCII.apostrophe:
            if peek(1) == ASCII.apostrophe && peek(2) == ASCII.apostrophe {
                at += 3; return .string(try multilineString(literal: true))
            }
            at += 1
            return .string(try literalString())
        case UInt8(ascii: "["):
            var unrecorded: [Int]?
            return try array(depth: depth + 1, elementLines: &unrecorded)
        case UInt8(ascii: "{"): return try inlineTable(depth: depth + 1)
        case UInt8(ascii: "t"): return try word("true", .boolean(true))
        case UInt8(ascii: "f"): return try word("false", .boolean(false))
        default: return try scalar()
        }
    }

    mutating func word(_ text: String, _ value: TOML.Value) throws(TOML.SyntaxError) -> TOML.Value {
        let end = at + text.utf8.count
        guard end <= bytes.count, bytes[at..<end].elementsEqual(text.utf8) else { throw error("expected a value") }
        at = end
        return value
    }

    /// A list; the line of each element goes to `elementLines` unless it is nil.
    mutating func array(depth: Int, elementLines: inout [Int]?) throws(TOML.SyntaxError) -> TOML.Value {
        if depth > maxDepth { throw tooDeep() }
        at += 1
        var elements: [TOML.Value] = []
        while true {
            try skipBlank()
            if peek() == UInt8(ascii: "]") { at += 1; return .array(elements) }
            if elementLines != nil { elementLines!.append(lineHere()) }
            elements.append(try value(depth: depth))
            try skipBlank()
            switch peek() {
            case UInt8(ascii: ","): at += 1
            case UInt8(ascii: "]"): at += 1; return .array(elements)
            default: throw error("expected ',' or ']' in the list")
            }
        }
    }

    /// `{ key = value, … }` on one line, no trailing comma; complete once closed.
    mutating func inlineTable(depth: Int) throws(TOML.SyntaxError) -> TOML.Value {
        if depth > maxDepth { throw tooDeep() }
        at += 1
        var inline = TOMLTables(maxDepth: maxDepth, rootDepth: depth)
        skipSpaces()
        if peek() == UInt8(ascii: "}") { at += 1; return .table(inline.build()) }
        while true {
            let start = at, line = lineHere()
            let keys = try key()
            if depth + keys.count - 1 > maxDepth { throw tooDeep(at: start) }
            let (value, elementLines) = try valueAfterEquals(depth: depth + keys.count - 1)
            if let problem = inline.assign(keys, value, line: line, elementLines: elementLines) {
                throw error(problem, at: start)
            }
            skipSpaces()
            switch peek() {
            case UInt8(ascii: ","): at += 1
            case UInt8(ascii: "}"): at += 1; return .table(inline.build())
            default: throw error("expected ',' or '}' in the inline table (it must stay on one line)")
            }
        }
    }
}
