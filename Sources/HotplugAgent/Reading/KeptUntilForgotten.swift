import HostInterface

/// Values read once and kept until `forget` or `forgetAll()`, which an event that may change
/// them calls. A reading begun before either is returned to its caller but not kept, so a
/// value read just before the change it misses is never served after it. The one mechanism
/// of the groups' members and the registered drivers the agent keeps (`GroupCache`,
/// `DriverCache`).
///
/// A value may carry tags (a group's members): `forget(tagged:)` forgets the values that
/// carry one through an index, without looking at every value kept (4,000 groups on a host
/// with many VFs, and every `add` and `remove` asks).
package final class KeptUntilForgotten<Key: Hashable & Sendable, Value: Sendable, Tag: Hashable & Sendable>: Sendable {
    private struct Kept {
        var values: [Key: Value] = [:]
        /// The keys of the values that carry each tag.
        var tagged: [Tag: Keys] = [:]
        /// Counts the forgets of any kind.
        var generation = 0
    }
    /// A tag is mostly carried by one value (an address is in one group): no set of its own.
    private enum Keys {
        case one(Key)
        case many(Set<Key>)

        var all: [Key] {
            switch self {
            case .one(let key): [key]
            case .many(let keys): Array(keys)
            }
        }

        func adding(_ key: Key) -> Keys {
            switch self {
            case .one(let known): known == key ? self : .many([known, key])
            case .many(let keys): .many(keys.union([key]))
            }
        }

        /// Without `key`; nil when none is left.
        func removing(_ key: Key) -> Keys? {
            switch self {
            case .one(let known): return known == key ? nil : self
            case .many(var keys):
                keys.remove(key)
                return keys.count == 1 ? .one(keys.first!) : keys.isEmpty ? nil : .many(keys)
            }
        }
    }
    private let kept = Locked(Kept())
    private let tags: @Sendable (Value) -> [Tag]

    package init(tags: @escaping @Sendable (Value) -> [Tag]) { self.tags = tags }

    package convenience init() where Tag == Never { self.init(tags: { _ in [] }) }

    /// The value kept for `key`, or `read()`'s, kept where `keeping` says so.
    package func value<Failure: Error>(
        for key: Key, keeping: (Value) -> Bool = { _ in true }, _ read: () throws(Failure) -> Value
    ) throws(Failure) -> Value {
        let (known, generation) = kept.withLock { ($0.values[key], $0.generation) }
        if let known { return known }
        let value = try read()
        guard keeping(value) else { return value }
        let tags = tags(value)
        kept.withLock { kept in
            guard kept.generation == generation else { return }
            // Another reading of the same key may have been kept meanwhile: its tags go first.
            Self.remove(key, from: &kept, tags: self.tags)
            kept.values[key] = value
            for tag in tags { kept.tagged[tag] = kept.tagged[tag]?.adding(key) ?? .one(key) }
        }
        return value
    }

    /// Forgets the value of `key`; a reading of any key begun before is not kept either.
    package func forget(_ key: Key) {
        kept.withLock {
            Self.remove(key, from: &$0, tags: tags)
            $0.generation += 1
        }
    }

    /// Forgets every value that carries `tag`; a reading begun before is not kept either.
    package func forget(tagged tag: Tag) {
        kept.withLock { kept in
            for key in kept.tagged[tag]?.all ?? [] { Self.remove(key, from: &kept, tags: tags) }
            kept.generation += 1
        }
    }

    package func forgetAll() {
        kept.withLock {
            $0.values.removeAll()
            $0.tagged.removeAll()
            $0.generation += 1
        }
    }

    /// How many values are kept (for tests).
    package var count: Int { kept.withLock { $0.values.count } }

    private static func remove(_ key: Key, from kept: inout Kept, tags: (Value) -> [Tag]) {
        guard let value = kept.values.removeValue(forKey: key) else { return }
        for tag in tags(value) { kept.tagged[tag] = kept.tagged[tag]?.removing(key) }
    }
}
