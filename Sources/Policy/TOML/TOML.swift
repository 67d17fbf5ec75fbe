/// TOML 1.0 as the agent reads it itself (`TOML.parse`): plain values, no Foundation, no
/// C++; the names stay clear of TOMLKit's, which the tests use as an oracle.
public enum TOML {}

extension TOML {
    /// A value of a TOML document.
    public indirect enum Value: Equatable, Sendable {
        case string(String)
        case integer(Int64)
        case float(Double)
        case boolean(Bool)
        case dateTime(DateTime)
        case array([Value])
        case table(Table)

        public var string: String? { if case .string(let value) = self { value } else { nil } }
        public var integer: Int64? { if case .integer(let value) = self { value } else { nil } }
        public var boolean: Bool? { if case .boolean(let value) = self { value } else { nil } }
        public var array: [Value]? { if case .array(let value) = self { value } else { nil } }
        public var table: Table? { if case .table(let value) = self { value } else { nil } }

        /// What an error message calls a value of this type: "a string", "a list", …
        public var kindDescription: String {
            switch self {
            case .string: "a string"
            case .integer: "an integer"
            case .float: "a float"
            case .boolean: "a boolean"
            case .dateTime(let value):
                switch value.kind {
                case .offsetDateTime, .localDateTime: "a date-time"
                case .localDate: "a date"
                case .localTime: "a time"
                }
            case .array: "a list"
            case .table: "a table"
            }
        }
    }

    /// A table: its keys in the order the document gives them, and the line each was
    /// written on (for messages about its value), kept as the document is read.
    public struct Table: Equatable, Sendable {
        public private(set) var keys: [String] = []
        private var values: [String: Value] = [:]
        /// The line of each key: where its value was written, or its table first named.
        private var lines: [String: Int] = [:]
        /// For a key whose value is a list (or an array of tables): the line of each element.
        private var elementLines: [String: [Int]] = [:]

        public init() {}

        public subscript(key: String) -> Value? { values[key] }

        /// Adds `key` with `value` after the others; false (and no change) if it is there.
        @discardableResult
        public mutating func add(_ key: String, _ value: Value, line: Int? = nil, elementLines: [Int] = []) -> Bool {
            guard values[key] == nil else { return false }
            keys.append(key)
            values[key] = value
            if let line { lines[key] = line }
            if !elementLines.isEmpty { self.elementLines[key] = elementLines }
            return true
        }

        /// The line `key` was written on, where the document gave it one.
        public func line(of key: String) -> Int? { lines[key] }

        /// The line element `index` of the list under `key` starts on.
        public func line(of key: String, element index: Int) -> Int? {
            guard let elements = elementLines[key], elements.indices.contains(index) else { return nil }
            return elements[index]
        }

        /// Tables are equal when their keys and values are: where they were written is no part of it.
        public static func == (a: Table, b: Table) -> Bool { a.keys == b.keys && a.values == b.values }
    }

    /// An RFC 3339 date, time or both, as TOML has them: with an offset, local, date only or
    /// time only. Fields a kind lacks are zero.
    public struct DateTime: Equatable, Sendable {
        public enum Kind: Sendable { case offsetDateTime, localDateTime, localDate, localTime }
        public var kind: Kind
        public var year = 0, month = 0, day = 0
        public var hour = 0, minute = 0, second = 0, nanosecond = 0
        /// Minutes east of UTC (`Z` is 0); only for `offsetDateTime`.
        public var offsetMinutes = 0

        public init(
            kind: Kind, year: Int = 0, month: Int = 0, day: Int = 0, hour: Int = 0, minute: Int = 0,
            second: Int = 0, nanosecond: Int = 0, offsetMinutes: Int = 0
        ) {
            (self.kind, self.year, self.month, self.day) = (kind, year, month, day)
            (self.hour, self.minute, self.second, self.nanosecond, self.offsetMinutes) = (
                hour, minute, second, nanosecond, offsetMinutes
            )
        }
    }

    /// Why a text is not TOML, or is more than a policy file may be, and where: line and
    /// column count from 1. `isLimit` marks a text refused for its size (nesting, values)
    /// rather than its grammar.
    public struct SyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
        public var line: Int
        public var column: Int
        public var message: String
        public var isLimit = false
        public var description: String { "\(line):\(column): \(message)" }
    }
}
