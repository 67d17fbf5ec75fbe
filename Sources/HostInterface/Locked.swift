import Glibc

/// A value behind a mutex: the agent's one lock for state its workers share (caches,
/// records, the ledger). A glibc mutex, which puts a waiter to sleep at once: the
/// standard library's `Mutex` spins first, and with more workers than cores (16 on 2, to
/// overlap slow probes) waiters spinning on a holder the scheduler had preempted took two
/// thirds of a coldplug's CPU.
package final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    package init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    package func withLock<T, E: Error>(_ body: (inout Value) throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
