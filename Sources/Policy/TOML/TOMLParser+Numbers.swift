/// Numbers, booleans and dates: TOML 1.0's scalars other than strings.
extension TOMLDocumentParser {
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
            guard let value = hexValue(byte).map(Int.init), value < radix else { return nil }
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

/// What a number or date token may hold: digits, letters (hex, `e`, `inf`, `T`, `Z`), signs,
/// `_`, `.` and `:`.
private func isScalarByte(_ byte: UInt8) -> Bool {
    isBareKey(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":")
}
