/// Typed values of a policy file: strings, booleans, integers, lists and accounts, each
/// checked and its error placed on its line.
extension PolicyFileReader {
    /// The value as `T`, or an error saying what was expected and what was found.
    mutating func typed<T>(_ index: Int, _ key: Key, _ value: TOML.Value, _ expected: String,
                           _ extract: (TOML.Value) -> T?) -> T? {
        if let typed = extract(value) { return typed }
        error(index, key, "expected \(expected), found \(value.kindDescription)")
        return nil
    }

    mutating func string(_ index: Int, _ key: Key, _ value: TOML.Value) -> String? {
        guard let text = typed(index, key, value, "a string", { $0.string }) else { return nil }
        return plain(index, key, text)
    }

    /// The text, unless it holds a control character other than tab (no key takes one).
    mutating func plain(_ index: Int, _ key: Key, _ text: String, element: Int? = nil) -> String? {
        guard PolicyText.hasControlCharacter(text) else { return text }
        error(index, key, "\(quoted(text)) holds a control character", element: element)
        return nil
    }

    mutating func bool(_ index: Int, _ key: Key, _ value: TOML.Value) -> Bool? {
        typed(index, key, value, "true or false") { $0.boolean }
    }

    mutating func integer(_ index: Int, _ key: Key, _ value: TOML.Value) -> Int? {
        typed(index, key, value, "an integer") { $0.integer.flatMap { Int(exactly: $0) } }
    }

    mutating func subtable(_ index: Int, _ key: Key, _ value: TOML.Value) -> TOML.Table? {
        typed(index, key, value, "a table") { $0.table }
    }

    /// A non-empty list of strings, each parsed by `parse`; errors name the element's line.
    mutating func parsedList<T>(_ index: Int, _ key: Key, _ value: TOML.Value,
                                _ parse: (String) -> Result<T, PolicyMessage>) -> [T] {
        guard let array = value.array else {
            error(index, key, "expected a list of strings, found \(value.kindDescription)")
            return []
        }
        if array.isEmpty { error(index, key, "the list is empty") }
        var items: [T] = []
        for (position, element) in array.enumerated() {
            guard let text = element.string else {
                error(index, key, "expected a string, found \(element.kindDescription)", element: position)
                continue
            }
            guard plain(index, key, text, element: position) != nil else { continue }
            switch parse(text) {
            case .success(let item): items.append(item)
            case .failure(let message): error(index, key, message.text, element: position)
            }
        }
        return items
    }

    /// `unavailable`: why no name of this kind can be looked up, said with an unknown one.
    mutating func account(_ index: Int, _ key: Key, _ value: TOML.Value, kind: String,
                          lookup: (String) -> UInt32?, unavailable: () -> String?) -> Account? {
        if let number = value.integer {
            guard let id = UInt32(exactly: number), id != UInt32.max else {
                error(index, key, "\(number) is not a \(kind) ID")
                return nil
            }
            return Account(id: id)
        }
        guard let raw = value.string else {
            error(index, key, "expected a \(kind) name or number, found \(value.kindDescription)")
            return nil
        }
        guard let text = plain(index, key, raw) else { return nil }
        if !text.isEmpty, text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber) {
            guard let id = UInt32(text), id != UInt32.max else {
                error(index, key, "\(quoted(text)) is not a \(kind) ID")
                return nil
            }
            return Account(id: id)
        }
        guard let id = lookup(text) else {
            error(index, key, "unknown \(kind) \(quoted(text))" + (unavailable().map { " (\($0))" } ?? ""))
            return nil
        }
        return Account(id: id, name: text)
    }
}
