/// Strings, numbers, booleans' neighbours and dates: TOML 1.0's scalar grammar.
extension TOMLDocumentParser {
    // MARK: Strings

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
                guard let byte = peek(), let digit = hexDigit(byte) else {
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

    // MARK: Numbers and dates

    /// A number, `inf`, `nan` or a date/time: the token up to a delimiter, then classified.
    mutating func scalar() throws(TOML.SyntaxError) -> TOML.Value {
        let start = at
        while let byte = peek(), isScalarByte(byte) { at += 1 }
        // A date and a time may be separated by one space.
        if at - start == 10, peek() == ASCII.space, let h = peek(1), let m = peek(2), isDigit(h), isDigit(m),
            peek(3) == UInt8(ascii: ":"),
            bytes[start + 4] == UInt8(ascii: "-")
        {
            at += 1
            while let byte = peek(), isScalarByte(byte) { at += 1 }
        }
        let token = Array(bytes[start..<at])
        guard !token.isEmpty else {
            throw error(peek().map { "expected a value, found \(shown($0))" } ?? "expected a value")
        }
        if let value = dateTime(token) { return .dateTime(value) }
        if let value = integer(token) { return .integer(value) }
        if let value = float(token) { return .float(value) }
        throw error("\(String(decoding: token, as: UTF8.self).debugDescription) is not a TOML value", at: start)
    }

    func integer(_ token: [UInt8]) -> Int64? {
        var digits = token[...], radix: Int64 = 10, negative = false
        if token.count > 2, token[0] == UInt8(ascii: "0") {
            switch token[1] {
            case UInt8(ascii: "x"): radix = 16
            case UInt8(ascii: "o"): radix = 8
            case UInt8(ascii: "b"): radix = 2
            default: break
            }
            if radix != 10 { digits = token[2...] }
        }
        if radix == 10, let sign = digits.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            negative = sign == UInt8(ascii: "-")
            digits = digits.dropFirst()
        }
        guard let values = digitValues(digits, radix: radix) else { return nil }
        if radix == 10 && values.count > 1 && values[0] == 0 { return nil }
        var magnitude: UInt64 = 0
        for value in values {
            let (shifted, overflow) = magnitude.multipliedReportingOverflow(by: UInt64(radix))
            let (sum, carry) = shifted.addingReportingOverflow(UInt64(value))
            if overflow || carry { return nil }
            magnitude = sum
        }
        if negative { return magnitude <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- magnitude) : nil }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }

    func float(_ token: [UInt8]) -> Double? {
        var body = token[...]
        var sign = ""
        if let first = body.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
            sign = first == UInt8(ascii: "-") ? "-" : ""
            body = body.dropFirst()
        }
        if body.elementsEqual("inf".utf8) { return Double(sign + "infinity") }
        if body.elementsEqual("nan".utf8) { return sign == "-" ? -Double.nan : Double.nan }
        let exponentAt = body.firstIndex { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
        let mantissa = body[..<(exponentAt ?? body.endIndex)]
        let dotAt = mantissa.firstIndex(of: UInt8(ascii: "."))
        let whole = mantissa[..<(dotAt ?? mantissa.endIndex)]
        guard let wholeDigits = digitValues(whole, radix: 10), wholeDigits.count == 1 || wholeDigits[0] != 0 else {
            return nil
        }
        if let dotAt {
            guard digitValues(mantissa[(dotAt + 1)...], radix: 10) != nil else { return nil }
        }
        if let exponentAt {
            var exponent = body[(exponentAt + 1)...]
            if let first = exponent.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
                exponent = exponent.dropFirst()
            }
            guard digitValues(exponent, radix: 10) != nil else { return nil }
        }
        guard dotAt != nil || exponentAt != nil else { return nil }
        return Double(sign + String(decoding: body.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self))
    }

    /// Digits of `radix` with single underscores between them, as values; nil otherwise.
    func digitValues(_ digits: ArraySlice<UInt8>, radix: Int64) -> [Int]? {
        var values: [Int] = []
        var previousWasDigit = false
        for byte in digits {
            if byte == UInt8(ascii: "_") {
                guard previousWasDigit else { return nil }
                previousWasDigit = false
                continue
            }
            guard let value = hexDigit(byte), value < radix else { return nil }
            values.append(value)
            previousWasDigit = true
        }
        return previousWasDigit ? values : nil
    }

    /// `YYYY-MM-DD`, `HH:MM:SS[.f]`, or both joined by `T`, `t` or a space, with `Z` or
    /// `±HH:MM` for an offset date-time; every field in range (February 29 in leap years).
    func dateTime(_ token: [UInt8]) -> TOML.DateTime? {
        var reader = FieldReader(bytes: token)
        var value = TOML.DateTime(kind: .localDate)
        if token.count >= 10, token[4] == UInt8(ascii: "-") {
            guard let year = reader.number(4), reader.take("-"), let month = reader.number(2), reader.take("-"),
                let day = reader.number(2), (1...12).contains(month), (1...daysIn(month, year)).contains(day)
            else { return nil }
            (value.year, value.month, value.day) = (year, month, day)
            if reader.done { return value }
            guard reader.take("T") || reader.take("t") || reader.take(" ") else { return nil }
            value.kind = .localDateTime
        } else {
            value.kind = .localTime
        }
        guard let hour = reader.number(2), reader.take(":"), let minute = reader.number(2), reader.take(":"),
            let second = reader.number(2), hour < 24, minute < 60, second <= 60
        else { return nil }
        (value.hour, value.minute, value.second) = (hour, minute, second)
        if reader.take(".") {
            var digits = 0, nanosecond = 0
            while let digit = reader.digit() {
                if digits < 9 { nanosecond = nanosecond * 10 + digit }
                digits += 1
            }
            guard digits > 0 else { return nil }
            for _ in min(digits, 9)..<9 { nanosecond *= 10 }
            value.nanosecond = nanosecond
        }
        if reader.done { return value }
        guard value.kind == .localDateTime else { return nil }
        value.kind = .offsetDateTime
        if reader.take("Z") || reader.take("z") { return reader.done ? value : nil }
        let negative = reader.take("-")
        guard negative || reader.take("+"), let hours = reader.number(2), reader.take(":"),
            let minutes = reader.number(2),
            hours < 24, minutes < 60, reader.done
        else { return nil }
        value.offsetMinutes = (negative ? -1 : 1) * (hours * 60 + minutes)
        return value
    }
}

/// Reads fixed-width fields of a date or time token.
private struct FieldReader {
    let bytes: [UInt8]
    var at = 0
    var done: Bool { at == bytes.count }

    mutating func take(_ character: Unicode.Scalar) -> Bool {
        guard at < bytes.count, bytes[at] == UInt8(ascii: character) else { return false }
        at += 1
        return true
    }

    mutating func digit() -> Int? {
        guard at < bytes.count, isDigit(bytes[at]) else { return nil }
        at += 1
        return Int(bytes[at - 1] - UInt8(ascii: "0"))
    }

    mutating func number(_ width: Int) -> Int? {
        var value = 0
        for _ in 0..<width {
            guard let digit = digit() else { return nil }
            value = value * 10 + digit
        }
        return value
    }
}

private func daysIn(_ month: Int, _ year: Int) -> Int {
    switch month {
    case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
    case 4, 6, 9, 11: 30
    default: 31
    }
}

private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

func hexDigit(_ byte: UInt8) -> Int? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a")) + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A")) + 10
    default: nil
    }
}

/// What a number or date token may hold: digits, letters (hex, `e`, `inf`, `T`, `Z`), signs,
/// `_`, `.` and `:`.
private func isScalarByte(_ byte: UInt8) -> Bool {
    isBareKey(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":")
}
