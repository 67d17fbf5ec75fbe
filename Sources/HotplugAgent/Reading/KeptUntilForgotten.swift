import HostInterface

/// Values read once and kept until `forget` or `forgetAll()`, which an event that may change
/// them calls. A reading begun before either is returned to its caller but not kept, so a
/// value read just before the change it misses is never served after it. The one mechanism of the
/// groups' members and the registered drivers the agent keeps (`GroupCache`, `DriverCache`).
package final class KeptUntilForgotten<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Kept {
        var values: [Key: Value] = [:]
        /// Counts the forgets of any kind.
        var generation = 0
    }
    private let kept = Locked(Kept())

    package init() {}

    /// The value kept for `key`, or `read()`'s.
    package func value<Failure: Error>(
        for key: Key, _ read: () throws(Failure) -> Value
    ) throws(Failure) -> Value {
        let (known, generation) = kept.withLock { ($0.values[key], $0.generation) }
        if let known { return known }
        let value = try read()
        kept.withLock { if $0.generation == generation { $0.values[key] = value } }
        return value
    }

    /// Forgets the value of `key`; a reading of any key begun before is not kept either.
    package func forget(_ key: Key) {
        kept.withLock {
            $0.values[key] = nil
            $0.generation += 1
        }
    }

    /// Forgets every value `isStale` holds for; a reading begun before is not kept either.
    package func forget(where isStale: (Key, Value) -> Bool) {
        kept.withLock { kept in
            // The keys first: removing while iterating would copy the whole table.
            let stale = kept.values.compactMap { isStale($0.key, $0.value) ? $0.key : nil }
            for key in stale { kept.values[key] = nil }
            kept.generation += 1
        }
    }

    package func forgetAll() {
        kept.withLock {
            $0.values.removeAll()
            $0.generation += 1
        }
    }
}
