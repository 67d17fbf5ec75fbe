import Glibc

/// A value behind a reader-writer lock: many readers at once, one writer alone.
/// The value lives at a pointer of its own, lent to readers in place (see `lend`): read
/// as a class's stored property it was copied whole for each reader (the simulated
/// kernel's state: some 600 instructions, and as many to destroy the copy).
final class ReadWriteLocked<Value>: @unchecked Sendable {
    private let value: UnsafeMutablePointer<Value>
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)

    init(_ value: Value) {
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    func read<T, E: Error>(_ body: (borrowing Value) throws(E) -> T) throws(E) -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try Self.lend(&value.pointee, body)
    }

    /// `body` given the value in place. Lent straight from `pointee`, it was copied (the
    /// compiler cannot know that nothing changes the memory meanwhile); from an `inout`
    /// parameter it is lent as it is. Readers overlap, but none of them writes.
    private static func lend<T, E: Error>(
        _ value: inout Value, _ body: (borrowing Value) throws(E) -> T
    ) throws(E) -> T {
        try body(value)
    }

    func write<T, E: Error>(_ body: (inout Value) throws(E) -> T) throws(E) -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(&value.pointee)
    }
}
