/// The tables of a document while it is read, with how each came to be, for TOML's rules:
/// a table is defined once (by its header, or by the dotted keys that made it); a header
/// may name a table its sub-tables' headers only implied, or one inside a table dotted keys
/// made; dotted keys extend only tables dotted keys made; `[[name]]` appends only to an
/// array of tables; inline tables and lists are complete once written. Each key keeps the
/// line it was written on, each list the lines of its elements.
struct TOMLTables {
    private enum Origin { case root, implied, header, dotted, element }

    private enum Item {
        case value(TOML.Value, line: Int, elementLines: [Int])
        case table(Int)
        /// An array of tables: its index in `arrays`.
        case tables(Int)
    }

    private struct Node {
        var origin: Origin
        var depth: Int
        /// The line of the header or dotted key that made it (or defined it, once implied).
        var line: Int
        var keys: [String] = []
        var items: [String: Item] = [:]
    }

    private var nodes: [Node]
    /// The element tables of each array of tables.
    private var arrays: [[Int]] = []
    private var current = 0
    private let maxDepth: Int

    init(maxDepth: Int, rootDepth: Int = 0) {
        self.maxDepth = maxDepth
        nodes = [Node(origin: .root, depth: rootDepth, line: 0)]
    }

    var depthOfCurrent: Int { nodes[current].depth }

    /// `[keys]` or `[[keys]]`: the table later key/value lines go into. A problem is returned.
    mutating func open(_ keys: [String], array: Bool, line: Int) -> String? {
        var node = 0
        for (position, key) in keys.dropLast().enumerated() {
            switch nodes[node].items[key] {
            case nil:
                guard let made = add(key, to: node, origin: .implied, line: line) else { return tooDeep }
                node = made
            case .table(let child): node = child
            case .tables(let array): node = arrays[array][arrays[array].count - 1]
            case .value: return "\(path(keys, position)) is already a value"
            }
        }
        let last = keys[keys.count - 1], name = path(keys, keys.count - 1)
        switch (nodes[node].items[last], array) {
        case (nil, false):
            guard let made = add(last, to: node, origin: .header, line: line) else { return tooDeep }
            current = made
        case (nil, true):
            guard let made = add(last, to: node, origin: .element, line: line, asElement: true) else { return tooDeep }
            current = made
        case (.table(let table), false):
            switch nodes[table].origin {
            case .implied:
                nodes[table].origin = .header
                nodes[table].line = line
                current = table
            case .dotted: return "table [\(name)] was already made by dotted keys"
            default: return "table [\(name)] is defined twice"
            }
        case (.tables, true):
            guard let made = add(last, to: node, origin: .element, line: line, asElement: true) else { return tooDeep }
            current = made
        case (.tables, false): return "[\(name)] is an array of tables, not a table"
        case (.table, true): return "[[\(name)]]: \(name) is already a table"
        case (.value, _): return "\(name) is already a value"
        }
        return nil
    }

    /// `keys = value` in the current table. A problem is returned.
    mutating func assign(_ keys: [String], _ value: TOML.Value, line: Int, elementLines: [Int]) -> String? {
        var node = current
        for (position, key) in keys.dropLast().enumerated() {
            switch nodes[node].items[key] {
            case nil:
                guard let made = add(key, to: node, origin: .dotted, line: line) else { return tooDeep }
                node = made
            case .table(let child) where nodes[child].origin == .dotted: node = child
            case .table: return "\(path(keys, position)) is a table defined elsewhere; dotted keys cannot add to it"
            case .tables: return "\(path(keys, position)) is an array of tables; dotted keys cannot add to it"
            case .value: return "\(path(keys, position)) is already a value"
            }
        }
        let last = keys[keys.count - 1]
        guard nodes[node].items[last] == nil else { return "\(path(keys, keys.count - 1)) is defined twice" }
        nodes[node].keys.append(last)
        nodes[node].items[last] = .value(value, line: line, elementLines: elementLines)
        return nil
    }

    /// The document as values.
    func build() -> TOML.Table { table(0) }

    private func table(_ index: Int) -> TOML.Table {
        var table = TOML.Table()
        for key in nodes[index].keys {
            switch nodes[index].items[key]! {
            case .value(let value, let line, let elementLines):
                table.add(key, value, line: line, elementLines: elementLines)
            case .table(let child):
                table.add(key, .table(self.table(child)), line: nodes[child].line)
            case .tables(let array):
                let elements = arrays[array]
                table.add(
                    key, .array(elements.map { .table(self.table($0)) }), line: nodes[elements[0]].line,
                    elementLines: elements.map { nodes[$0].line })
            }
        }
        return table
    }

    /// A new table under `parent` (appended to its array of tables when `asElement`).
    private mutating func add(
        _ key: String, to parent: Int, origin: Origin, line: Int,
        asElement: Bool = false
    ) -> Int? {
        let depth = nodes[parent].depth + 1
        guard depth <= maxDepth else { return nil }
        nodes.append(Node(origin: origin, depth: depth, line: line))
        let made = nodes.count - 1
        if asElement {
            if case .tables(let array)? = nodes[parent].items[key] {
                arrays[array].append(made)
                return made
            }
            arrays.append([made])
            nodes[parent].items[key] = .tables(arrays.count - 1)
        } else {
            nodes[parent].items[key] = .table(made)
        }
        nodes[parent].keys.append(key)
        return made
    }

    private var tooDeep: String { "arrays or tables nested more than \(maxDepth) deep" }

    private func path(_ keys: [String], _ upTo: Int) -> String {
        keys[...upTo].map { key in key.utf8.allSatisfy(isBareKey) && !key.isEmpty ? key : key.debugDescription }.joined(
            separator: ".")
    }
}
