/// Finds the line on which each key of a TOML document is written.
///
/// TOMLKit parses and validates the document but keeps no positions, so error messages
/// would lose their line. This index scans a document that already parsed: it only has to
/// find where each statement, table header and array element starts, skipping strings and
/// comments. Paths look like `policy[1].match.ids[2]`; `[[policy]]` headers count from 0.
struct TOMLLineIndex {
    private var lines: [String: Int] = [:]
    /// The first table header with no name (`[` then a newline): toml++ asserts on it
    /// (undefined behaviour in release builds), so such text never reaches it.
    private(set) var malformedHeader: (line: Int, column: Int)?

    init(_ text: String) {
        var scanner = Scanner(bytes: Array(text.utf8))
        scanner.run()
        lines = scanner.lines
        malformedHeader = scanner.malformedHeader
    }

    /// The line of `path`, or of the nearest enclosing key that has one.
    func line(of path: String) -> Int? {
        var path = Substring(path)
        while true {
            if let line = lines[String(path)] { return line }
            guard let cut = path.lastIndex(where: { $0 == "." || $0 == "[" }) else { return nil }
            path = path[..<cut]
        }
    }

    private struct Scanner {
        let bytes: [UInt8]
        var pos = 0
        var line = 1
        var lines: [String: Int] = [:]
        var arrayTableCounts: [String: Int] = [:]
        var malformedHeader: (line: Int, column: Int)?
        var lineStart = 0
        /// Path prefix of the current table (`policy[1].match`), empty at the root.
        var table = ""

        init(bytes: [UInt8]) { self.bytes = bytes }

        var current: UInt8? { pos < bytes.count ? bytes[pos] : nil }

        mutating func advance() {
            if bytes[pos] == UInt8(ascii: "\n") {
                line += 1
                lineStart = pos + 1
            }
            pos += 1
        }

        mutating func run() {
            while true {
                skipBlank(newlines: true)
                guard let c = current else { return }
                if c == UInt8(ascii: "[") {
                    header()
                } else {
                    let start = line
                    let key = keyPath()
                    let path = join(table, key)
                    record(path, start)
                    skipBlank(newlines: false)
                    if current == UInt8(ascii: "=") { advance() }
                    value(path)
                }
                skipToLineEnd()
            }
        }

        mutating func header() {
            let start = line
            advance()
            let isArray = current == UInt8(ascii: "[")
            if isArray { advance() }
            while current == UInt8(ascii: " ") || current == UInt8(ascii: "\t") { advance() }
            if malformedHeader == nil, let c = current, !isKeyStart(c) && c != UInt8(ascii: "]") {
                malformedHeader = (start, pos - lineStart + 1)
            }
            let key = keyPath()
            while let c = current, c != UInt8(ascii: "\n") {
                advance()
                if c == UInt8(ascii: "]") && !(isArray && current == UInt8(ascii: "]")) { break }
            }
            if isArray {
                // An array of tables nested in the current element (`[[policy.x]]`) keeps the
                // indices of its enclosing arrays.
                var parts = key.split(separator: ".").map(String.init)
                let last = parts.popLast() ?? ""
                let resolved = join(resolveArrays(parts.joined(separator: ".")), last)
                let index = arrayTableCounts[resolved, default: 0]
                arrayTableCounts[resolved] = index + 1
                table = "\(resolved)[\(index)]"
            } else {
                table = resolveArrays(key)
            }
            record(table, start)
        }

        /// `policy.match` after `[[policy]]` #1 is `policy[1].match`.
        func resolveArrays(_ key: String) -> String {
            var resolved = ""
            for part in key.split(separator: ".") {
                resolved = join(resolved, String(part))
                if let count = arrayTableCounts[resolved] { resolved += "[\(count - 1)]" }
            }
            return resolved
        }

        mutating func value(_ path: String) {
            skipBlank(newlines: false)
            guard let c = current else { return }
            switch c {
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                string()
            case UInt8(ascii: "["):
                advance()
                var index = 0
                while true {
                    skipBlank(newlines: true)
                    guard let c = current else { return }
                    if c == UInt8(ascii: "]") { advance(); return }
                    if c == UInt8(ascii: ",") { advance(); index += 1; continue }
                    let element = "\(path)[\(index)]"
                    record(element, line)
                    let before = pos
                    value(element)
                    if pos == before { advance() }  // not a value at all: step over it
                }
            case UInt8(ascii: "{"):
                advance()
                while true {
                    skipBlank(newlines: false)
                    guard let c = current, c != UInt8(ascii: "\n") else { return }  // inline tables end on their line
                    if c == UInt8(ascii: "}") { advance(); return }
                    if c == UInt8(ascii: ",") { advance(); continue }
                    let start = line, before = pos
                    let key = join(path, keyPath())
                    record(key, start)
                    skipBlank(newlines: false)
                    if current == UInt8(ascii: "=") { advance() }
                    value(key)
                    if pos == before { advance() }
                }
            default:
                while let c = current, !",]}\n#".utf8.contains(c) { advance() }
            }
        }

        /// A dotted key of bare and quoted parts, up to `=` or `]`.
        mutating func keyPath() -> String {
            var parts: [String] = []
            var part: [UInt8] = []
            while let c = current, c != UInt8(ascii: "="), c != UInt8(ascii: "]"), c != UInt8(ascii: "\n") {
                if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                    let start = pos + 1
                    string()
                    part += bytes[start..<max(start, pos - 1)]
                } else if c == UInt8(ascii: ".") {
                    parts.append(String(decoding: part, as: UTF8.self))
                    part = []
                    advance()
                } else {
                    if c != UInt8(ascii: " ") && c != UInt8(ascii: "\t") { part.append(c) }
                    advance()
                }
            }
            parts.append(String(decoding: part, as: UTF8.self))
            return parts.joined(separator: ".")
        }

        /// Skips a basic, literal or multi-line string starting at the quote.
        mutating func string() {
            let quote = bytes[pos]
            let triple = pos + 2 < bytes.count && bytes[pos + 1] == quote && bytes[pos + 2] == quote
            advance()
            if triple { advance(); advance() }
            while let c = current {
                if c == UInt8(ascii: "\\") && quote == UInt8(ascii: "\"") {
                    advance()
                    if current != nil { advance() }
                    continue
                }
                if c == quote {
                    if !triple { advance(); return }
                    if pos + 2 < bytes.count && bytes[pos + 1] == quote && bytes[pos + 2] == quote {
                        advance(); advance(); advance()
                        // Up to two more quotes may belong to the content.
                        while current == quote { advance() }
                        return
                    }
                }
                if c == UInt8(ascii: "\n") && !triple { return }
                advance()
            }
        }

        mutating func skipBlank(newlines: Bool) {
            while let c = current {
                if c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\r") || (newlines && c == UInt8(ascii: "\n")) {
                    advance()
                } else if c == UInt8(ascii: "#") {
                    while let c = current, c != UInt8(ascii: "\n") { _ = c; advance() }
                } else {
                    return
                }
            }
        }

        mutating func skipToLineEnd() {
            while let c = current, c != UInt8(ascii: "\n") { _ = c; advance() }
        }

        mutating func record(_ path: String, _ line: Int) {
            if lines[path] == nil { lines[path] = line }
        }

        /// A bare key character or a quote: what may start a key.
        func isKeyStart(_ c: UInt8) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
                || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") || c == UInt8(ascii: "\"") || c == UInt8(ascii: "'")
        }

        func join(_ a: String, _ b: String) -> String { a.isEmpty ? b : b.isEmpty ? a : a + "." + b }
    }
}
