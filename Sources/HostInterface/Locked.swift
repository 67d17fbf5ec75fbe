import Glibc

/// A value behind a mutex: the agent's one lock for state its workers share (caches,
/// records, the ledger). glibc's adaptive mutex, which tries a few times, as long as a
/// holder's short critical section lasts, and then puts the waiter to sleep. The standard
/// library's `Mutex` spins far longer first, and with more workers than cores (16 on 2, to
/// overlap slow probes) waiters spinning on a holder the scheduler had preempted took two
/// thirds of a 4096-VF coldplug's CPU; a mutex that sleeps at once made a small coldplug's
/// wall time a third longer (the wake-ups).
package final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    package init(_ value: Value) {
        self.value = value
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
        pthread_mutex_init(mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
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
