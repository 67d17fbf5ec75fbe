/// Finds the line on which each key of a TOML document is written, and what no TOML parser
/// may be handed: a table header without a name, or nesting deeper than `PolicyText.maxDepth`.
///
/// `TOML.parse` validates the document and keeps no positions of keys, so error messages
/// about values would lose their line. This index only has to find where each statement, table header
/// and list element starts, skipping strings and comments. Paths look like
/// `policy[1].match.ids[2]`; `[[policy]]` headers count from 0.
///
/// It runs before any parser, on any text: it uses no recursion (nested values are an
/// explicit stack, and it stops at the first level past the limit), visits each byte a
/// bounded number of times, and records elements only of lists directly under a key, the
/// only ones errors name.
struct TOMLLineIndex {
    private var lines: [String: Int] = [:]
    /// The first table header with no name (`[` then a newline), refused with this
    /// index's wording before the parser sees it.
    private(set) var malformedHeader: (line: Int, column: Int)?
    /// Where nesting first goes past `PolicyText.maxDepth`; the scan stops there.
    private(set) var tooDeep: (line: Int, column: Int)?
    /// Where the value past `PolicyText.maxValues` starts; the scan stops there.
    private(set) var tooMany: (line: Int, column: Int)?

    init(_ text: String) {
        var scanner = Scanner(bytes: Array(text.utf8))
        scanner.run()
        lines = scanner.lines
        malformedHeader = scanner.malformedHeader
        tooDeep = scanner.tooDeep
        tooMany = scanner.tooMany
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

    /// Elements recorded per list: a policy's lists are short; a huge one costs no memory.
    static let recordedElements = 4096

    private struct Scanner {
        let bytes: [UInt8]
        var pos = 0
        var line = 1
        var lines: [String: Int] = [:]
        var arrayTableCounts: [String: Int] = [:]
        var malformedHeader: (line: Int, column: Int)?
        var tooDeep: (line: Int, column: Int)?
        var tooMany: (line: Int, column: Int)?
        var values = 0
        var lineStart = 0
        /// Path prefix of the current table (`policy[1].match`), empty at the root.
        var table = ""
        /// How deep the current table is (`[a.b]`: 2).
        var tableDepth = 0

        /// An open list or inline table. `path` is set only where elements are recorded.
        enum Frame {
            case list(path: String?, index: Int)
            case inlineTable(path: String?)
        }

        init(bytes: [UInt8]) { self.bytes = bytes }

        var current: UInt8? { pos < bytes.count ? bytes[pos] : nil }
        var column: Int { pos - lineStart + 1 }

        mutating func advance() {
            if bytes[pos] == UInt8(ascii: "\n") {
                line += 1
                lineStart = pos + 1
            }
            pos += 1
        }

        mutating func run() {
            while tooDeep == nil && tooMany == nil {
                skipBlank(newlines: true)
                guard let c = current else { return }
                if c == UInt8(ascii: "[") {
                    header()
                } else {
                    let start = line
                    let (key, parts) = keyPath()
                    let path = join(table, key)
                    if !deepEnough(tableDepth + parts) { return }
                    record(path, start)
                    skipBlank(newlines: false)
                    if current == UInt8(ascii: "=") { advance() }
                    value(path, depth: tableDepth + parts)
                }
                skipToLineEnd()
            }
        }

        /// False (and the place noted) once `depth` is past the limit.
        mutating func deepEnough(_ depth: Int) -> Bool {
            guard depth > PolicyText.maxDepth else { return true }
            if tooDeep == nil { tooDeep = (line, column) }
            return false
        }

        mutating func header() {
            let start = line
            // A table counts as a value: a file of headers alone costs a parser as much.
            values += 1
            if values > PolicyText.maxValues {
                tooMany = (line, column)
                return
            }
            advance()
            let isArray = current == UInt8(ascii: "[")
            if isArray { advance() }
            while current == UInt8(ascii: " ") || current == UInt8(ascii: "\t") { advance() }
            if malformedHeader == nil, let c = current, !isKeyStart(c) && c != UInt8(ascii: "]") {
                malformedHeader = (start, column)
            }
            let (key, parts) = keyPath()
            guard deepEnough(parts + (isArray ? 1 : 0)) else { return }
            while let c = current, c != UInt8(ascii: "\n") {
                advance()
                if c == UInt8(ascii: "]") && !(isArray && current == UInt8(ascii: "]")) { break }
            }
            tableDepth = parts + (isArray ? 1 : 0)
            if isArray {
                // An array of tables nested in the current element (`[[policy.x]]`) keeps the
                // indices of its enclosing arrays.
                var names = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                let last = names.popLast() ?? ""
                let resolved = join(resolveArrays(names), last)
                let index = arrayTableCounts[resolved, default: 0]
                arrayTableCounts[resolved] = index + 1
                table = "\(resolved)[\(index)]"
            } else {
                table = resolveArrays(key.split(separator: ".", omittingEmptySubsequences: false).map(String.init))
            }
            record(table, start)
        }

        /// `policy.match` after `[[policy]]` #1 is `policy[1].match`.
        func resolveArrays(_ names: [String]) -> String {
            var resolved = ""
            for name in names where !name.isEmpty {
                resolved = join(resolved, name)
                if let count = arrayTableCounts[resolved] { resolved += "[\(count - 1)]" }
            }
            return resolved
        }

        /// The value after `key =`: a string, a scalar, or lists and inline tables nested to
        /// any depth, walked with an explicit stack.
        mutating func value(_ path: String, depth: Int) {
            var stack: [Frame] = []
            // The place a value is expected next; nil while inside a container between values.
            var pending: String?? = .some(path)
            while true {
                if let expected = pending {
                    pending = nil
                    skipBlank(newlines: false)
                    guard let c = current else { return }
                    values += 1
                    if values > PolicyText.maxValues {
                        tooMany = (line, column)
                        return
                    }
                    switch c {
                    case UInt8(ascii: "\""), UInt8(ascii: "'"):
                        string()
                    case UInt8(ascii: "["), UInt8(ascii: "{"):
                        guard deepEnough(depth + stack.count + 1) else { return }
                        advance()
                        // Elements are recorded for a list that is a key's own value.
                        let recorded = stack.isEmpty ? expected : nil
                        stack.append(c == UInt8(ascii: "[") ? .list(path: recorded, index: 0) : .inlineTable(path: expected))
                    default:
                        let before = pos
                        while let c = current, !",]}\n#".utf8.contains(c) { advance() }
                        // Not a value at all: step over it, inside a container.
                        if pos == before && !stack.isEmpty { advance() }
                    }
                }
                guard let top = stack.last else { return }
                switch top {
                case .list(let path, let index):
                    skipBlank(newlines: true)
                    guard let c = current else { return }
                    if c == UInt8(ascii: "]") {
                        advance()
                        stack.removeLast()
                    } else if c == UInt8(ascii: ",") {
                        advance()
                        stack[stack.count - 1] = .list(path: path, index: index + 1)
                    } else {
                        var element: String?
                        if let path, index < TOMLLineIndex.recordedElements {
                            element = "\(path)[\(index)]"
                            record(element!, line)
                        }
                        pending = .some(element)
                    }
                case .inlineTable(let path):
                    skipBlank(newlines: false)
                    // Inline tables end on their line.
                    guard let c = current, c != UInt8(ascii: "\n") else {
                        if current == nil { return }
                        stack.removeLast()
                        continue
                    }
                    if c == UInt8(ascii: "}") {
                        advance()
                        stack.removeLast()
                    } else if c == UInt8(ascii: ",") {
                        advance()
                    } else {
                        let start = line
                        let (key, parts) = keyPath()
                        guard deepEnough(depth + stack.count + parts) else { return }
                        let full = path.map { join($0, key) }
                        if let full { record(full, start) }
                        skipBlank(newlines: false)
                        if current == UInt8(ascii: "=") { advance() }
                        pending = .some(full)
                    }
                }
            }
        }

        /// A dotted key of bare and quoted parts, up to `=` or `]`, and how many parts it has.
        mutating func keyPath() -> (String, Int) {
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
                    // Past the limit the parts are not worth keeping; the caller stops.
                    if parts.count > PolicyText.maxDepth { break }
                } else {
                    if c != UInt8(ascii: " ") && c != UInt8(ascii: "\t") { part.append(c) }
                    advance()
                }
            }
            parts.append(String(decoding: part, as: UTF8.self))
            return (parts.joined(separator: "."), parts.count)
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
                        var extra = 0
                        while current == quote && extra < 2 { advance(); extra += 1 }
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
