import HostInterface
import Glibc

/// A mutex with condition variables (monotonic clock), for the work queue: `.work` wakes
/// one idle worker per item, `.progress` wakes whoever waits for the queue to settle,
/// `.slow` the queue's overseer of slow calls.
package final class ConditionLock: @unchecked Sendable {
    package enum Condition: Int, CaseIterable { case progress = 0, work = 1, slow = 2 }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let conditions = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: Condition.allCases.count)

    package init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        for condition in Condition.allCases { pthread_cond_init(conditions + condition.rawValue, &attributes) }
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        for condition in Condition.allCases { pthread_cond_destroy(conditions + condition.rawValue) }
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        conditions.deallocate()
    }

    package func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits (the lock held by the caller) until signalled or `timeout` passes.
    package func wait(_ which: Condition = .progress, timeout: Duration? = nil) {
        let condition = conditions + which.rawValue
        guard let timeout else {
            pthread_cond_wait(condition, mutex)
            return
        }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let (seconds, attoseconds) = timeout.components
        var nanoseconds = Int(now.tv_nsec) + Int(attoseconds / 1_000_000_000)
        var deadline = timespec(tv_sec: now.tv_sec + Int(seconds) + nanoseconds / 1_000_000_000, tv_nsec: 0)
        nanoseconds %= 1_000_000_000
        deadline.tv_nsec = nanoseconds
        pthread_cond_timedwait(condition, mutex, &deadline)
    }

    package func broadcast(_ which: Condition = .progress) { pthread_cond_broadcast(conditions + which.rawValue) }
    package func signal(_ which: Condition) { pthread_cond_signal(conditions + which.rawValue) }
}

/// Starts a detached thread running `body`.
package func startThread(_ body: @escaping @Sendable () -> Void) {
    final class Box: @unchecked Sendable {
        package let body: @Sendable () -> Void
        package init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var thread = pthread_t()
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    let created = pthread_create(&thread, nil, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        box.body()
        return nil
    }, box)
    precondition(created == 0, "pthread_create: \(Errno(created))")
    pthread_detach(thread)
}

extension Duration {
    /// Whole milliseconds, rounded up, as poll() takes them (0 for negative durations).
    package var pollMilliseconds: Int32 {
        let (seconds, attoseconds) = components
        let milliseconds = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: max(0, milliseconds))
    }
}
