import Policy
import TOMLKit

/// TOMLKit (toml++) as the oracle the agent's own TOML parser is checked against: its
/// tree in the parser's values, and a comparison that ignores key order (toml++ keeps
/// keys sorted) and takes every NaN as equal.
enum TOMLOracle {
    /// TOMLKit's reading of `text`, or nil when it refuses it. Only for text known to be
    /// valid: toml++ aborts on some malformed text.
    static func parse(_ text: String) -> TOML.Value? {
        (try? TOMLKit.TOMLTable(string: text)).map { convert($0) }
    }

    static func convert(_ value: any TOMLValueConvertible) -> TOML.Value {
        switch value.type {
        case .string: return .string(value.string!)
        case .int: return .integer(Int64(value.int!))
        case .double: return .float(value.double!)
        case .bool: return .boolean(value.bool!)
        case .date:
            let date = value.date!
            return .dateTime(TOML.DateTime(kind: .localDate, year: date.year, month: date.month, day: date.day))
        case .time:
            let time = value.time!
            return .dateTime(
                TOML.DateTime(
                    kind: .localTime, hour: time.hour, minute: time.minute, second: time.second,
                    nanosecond: time.nanoSecond))
        case .dateTime:
            let both = value.dateTime!
            return .dateTime(
                TOML.DateTime(
                    kind: both.offset == nil ? .localDateTime : .offsetDateTime,
                    year: both.date.year, month: both.date.month, day: both.date.day,
                    hour: both.time.hour, minute: both.time.minute, second: both.time.second,
                    nanosecond: both.time.nanoSecond, offsetMinutes: both.offset?.offset ?? 0))
        case .array: return .array(value.array!.map { convert($0) })
        case .table:
            let table = value.table!
            var converted = TOML.Table()
            for key in table.keys { converted.add(key, convert(table[key]!)) }
            return .table(converted)
        }
    }

    /// Equal values; tables whatever their key order; NaN equal to NaN.
    static func same(_ a: TOML.Value, _ b: TOML.Value) -> Bool {
        switch (a, b) {
        case (.float(let x), .float(let y)): return x == y || (x.isNaN && y.isNaN)
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy(same)
        case (.table(let x), .table(let y)):
            return Set(x.keys) == Set(y.keys) && x.keys.count == y.keys.count
                && x.keys.allSatisfy { same(x[$0]!, y[$0]!) }
        default: return a == b
        }
    }
}
