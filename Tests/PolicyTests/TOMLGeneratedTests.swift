import Policy
import Testing

/// Generated documents: a random tree of every TOML value type, written out in randomly
/// chosen syntax (headers, dotted keys or inline tables; `[[…]]` or inline arrays; every
/// string form; decimal, hex, octal and binary integers; spacing, comments, trailing
/// commas). The agent's parser must read back the tree that was written, as TOMLKit does.
struct TOMLGeneratedTests {
    @Test func readsBackWhatWasWrittenAsTOMLKitDoes() throws {
        var random = SplitMix(seed: 0x5EED)
        var written = 0
        for round in 0..<400 {
            var writer = TOMLWriter(random: random)
            let tree = writer.table(depth: 0)
            let text = writer.document(tree)
            written += text.utf8.count
            random = writer.random
            let mine: TOML.Table
            do { mine = try TOML.parse(text) } catch {
                Issue.record("round \(round): \(error)\n\(text)")
                continue
            }
            #expect(TOMLOracle.same(.table(mine), .table(tree)), "round \(round): read back differently\n\(text)")
            let oracle = TOMLOracle.parse(text)
            #expect(oracle.map { TOMLOracle.same(.table(mine), $0) } == true, "round \(round): TOMLKit reads\n\(text)")
        }
        #expect(written > 40_000, "the documents are too small to say much (\(written) bytes)")
    }
}

/// A deterministic random source (SplitMix64).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Makes a random tree and writes it as TOML.
struct TOMLWriter {
    var random: SplitMix
    static let keys = [
        "a", "b", "key", "x-1", "under_score", "123", "true", "with space", "ünï", "", "a.b", "quote\"d", "tab\there"
    ]
    static let strings = [
        "plain", "tab\there", "quote\" and 'apostrophe'", "back\\slash", "two\nlines", "ünïcödé 🎉",
        "", "del\u{7F}", "bell\u{07}", "\"\"", "ends with quote\"", "trailing \\"
    ]

    mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &random)] }
    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &random) < percent }

    // MARK: The tree

    mutating func table(depth: Int) -> TOML.Table {
        var table = TOML.Table()
        for _ in 0..<Int.random(in: (depth == 0 ? 3 : 0)...(depth == 0 ? 8 : 4), using: &random) {
            table.add(pick(Self.keys), value(depth: depth + 1))
        }
        return table
    }

    mutating func value(depth: Int) -> TOML.Value {
        switch Int.random(in: 0..<(depth < 4 ? 10 : 6), using: &random) {
        case 0: return .string(pick(Self.strings))
        case 1:
            return .integer(
                pick([
                    0, 1, -1, 42, 1_000_000, Int64.max, Int64.min,
                    Int64.random(in: -1_000_000...1_000_000, using: &random)
                ]))
        case 2:
            return .float(
                pick([
                    0.5, -2.25, 1e10, 6.02e23, .leastNonzeroMagnitude, 1.0 / 3, .infinity, -.infinity, .nan, 0,
                    123_456.789
                ]))
        case 3: return .boolean(chance(50))
        case 4: return .dateTime(dateTime())
        case 5: return .array([])
        case 6, 7:
            return .array((0..<Int.random(in: 1...3, using: &random)).map { _ in value(depth: depth + 1) })
        default:
            // A table, or an array of tables.
            if chance(30) {
                return .array((0..<Int.random(in: 1...3, using: &random)).map { _ in .table(table(depth: depth)) })
            }
            return .table(table(depth: depth))
        }
    }

    mutating func dateTime() -> TOML.DateTime {
        let kind = pick([TOML.DateTime.Kind.offsetDateTime, .localDateTime, .localDate, .localTime])
        var value = TOML.DateTime(kind: kind)
        if kind != .localTime {
            (value.year, value.month, value.day) = (
                Int.random(in: 1900...2100, using: &random), Int.random(in: 1...12, using: &random),
                Int.random(in: 1...28, using: &random)
            )
        }
        if kind != .localDate {
            (value.hour, value.minute, value.second) = (
                Int.random(in: 0...23, using: &random), Int.random(in: 0...59, using: &random),
                Int.random(in: 0...59, using: &random)
            )
            if chance(40) { value.nanosecond = Int.random(in: 0...999, using: &random) * 1_000_000 }
        }
        if kind == .offsetDateTime && chance(60) { value.offsetMinutes = pick([-480, -450, 60, 330, 840]) }
        return value
    }

    // MARK: Writing

    mutating func document(_ tree: TOML.Table) -> String {
        var out = chance(20) ? "# generated\n" : ""
        section(tree, path: [], into: &out)
        return out
    }

    /// A table's own lines (values, inline tables, dotted keys), then its sub-tables as
    /// `[path]` and `[[path]]` sections.
    mutating func section(_ table: TOML.Table, path: [String], into out: inout String) {
        var later: [(key: String, value: TOML.Value)] = []
        for key in table.keys {
            let value = table[key]!
            switch value {
            case .table(let sub) where chance(50):
                if chance(50) && !sub.keys.isEmpty && sub.keys.allSatisfy({ sub[$0]!.isPlain }) {
                    for subKey in sub.keys { out += "\(written(key)).\(written(subKey)) = \(inline(sub[subKey]!))\n" }
                } else {
                    later.append((key, value))
                }
            case .array(let elements) where !elements.isEmpty && elements.allSatisfy({ $0.table != nil }) && chance(60):
                later.append((key, value))
            default:
                out += "\(written(key))\(pick([" = ", "=", "  =\t"]))\(inline(value))\(chance(20) ? " # note" : "")\n"
            }
        }
        for (key, value) in later {
            let name = (path + [key]).map(written).joined(separator: pick([".", " . "]))
            if case .table(let sub) = value {
                out += "\n[\(name)]\n"
                section(sub, path: path + [key], into: &out)
            } else {
                for element in value.array! {
                    out += "\n[[\(name)]]\n"
                    section(element.table!, path: path + [key], into: &out)
                }
            }
        }
    }

    mutating func inline(_ value: TOML.Value) -> String {
        switch value {
        case .string(let text): return string(text)
        case .integer(let number): return integer(number)
        case .float(let number):
            if number.isNaN { return pick(["nan", "+nan"]) }
            if number.isInfinite { return number < 0 ? "-inf" : pick(["inf", "+inf"]) }
            let text = "\(number)"
            return text.contains(".") || text.contains("e") ? text : text + ".0"
        case .boolean(let flag): return flag ? "true" : "false"
        case .dateTime(let value): return dateTime(value)
        case .array(let elements):
            if elements.isEmpty { return pick(["[]", "[ ]", "[\n]"]) }
            let separator = pick([", ", ",", ",\n  ", " , "])
            let trailing = chance(30) ? "," : ""
            return "[" + elements.map { inline($0) }.joined(separator: separator) + trailing
                + (chance(20) ? " # end\n" : "") + "]"
        case .table(let table):
            if table.keys.isEmpty { return "{}" }
            return "{ " + table.keys.map { "\(written($0)) = \(inline(table[$0]!))" }.joined(separator: ", ") + " }"
        }
    }

    mutating func integer(_ number: Int64) -> String {
        guard number >= 0, chance(40) else { return chance(20) && number > 0 ? "+\(number)" : "\(number)" }
        switch Int.random(in: 0..<4, using: &random) {
        case 0: return "0x" + String(number, radix: 16, uppercase: chance(50))
        case 1: return "0o" + String(number, radix: 8)
        case 2: return "0b" + String(number, radix: 2)
        default:
            let digits = Array(String(number))
            var out = ""
            for (index, digit) in digits.enumerated() {
                if index > 0 && (digits.count - index) % 3 == 0 { out += "_" }
                out.append(digit)
            }
            return out
        }
    }

    mutating func string(_ text: String) -> String {
        let plainLiteral =
            !text.contains("'") && !text.unicodeScalars.contains { $0.value < 0x20 && $0 != "\t" || $0.value == 0x7F }
        switch Int.random(in: 0..<4, using: &random) {
        case 0 where plainLiteral: return "'\(text)'"
        case 1 where plainLiteral && !text.hasSuffix("'"): return "'''\(chance(50) ? "\n" : "")\(text)'''"
        case 2: return "\"\"\"\(chance(50) ? "\n" : "")\(escaped(text, keepNewlines: true))\"\"\""
        default: return "\"\(escaped(text, keepNewlines: false))\""
        }
    }

    func escaped(_ text: String, keepNewlines: Bool) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n" where keepNewlines: out += "\n"
            case "\n": out += "\\n"
            case "\t": out += "\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    func written(_ key: String) -> String {
        !key.isEmpty && key.utf8.allSatisfy({ $0.isBareKeyByte }) ? key : "\"\(escaped(key, keepNewlines: false))\""
    }

    mutating func dateTime(_ value: TOML.DateTime) -> String {
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let date = "\(value.year)-\(two(value.month))-\(two(value.day))"
        var time = "\(two(value.hour)):\(two(value.minute)):\(two(value.second))"
        if value.nanosecond != 0 {
            let millis = String(value.nanosecond / 1_000_000)
            time += "." + String(repeating: "0", count: 3 - millis.count) + millis
        }
        switch value.kind {
        case .localDate: return date
        case .localTime: return time
        case .localDateTime: return date + pick(["T", " ", "t"]) + time
        case .offsetDateTime:
            let minutes = abs(value.offsetMinutes)
            let offset =
                value.offsetMinutes == 0
                ? pick(["Z", "z", "+00:00"])
                : (value.offsetMinutes < 0 ? "-" : "+") + two(minutes / 60) + ":" + two(minutes % 60)
            return date + "T" + time + offset
        }
    }
}

private extension TOML.Value {
    /// A value dotted keys may carry: anything but a table or an array of tables.
    var isPlain: Bool {
        switch self {
        case .table: false
        case .array(let elements): !elements.contains { $0.table != nil }
        default: true
        }
    }
}

private extension UInt8 {
    var isBareKeyByte: Bool {
        (0x30...0x39).contains(self) || (0x41...0x5A).contains(self) || (0x61...0x7A).contains(self) || self == 0x5F
            || self == 0x2D
    }
}
