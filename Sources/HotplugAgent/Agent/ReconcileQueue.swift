import Glibc
import HostInterface
import Policy

/// Devices waiting to be reconciled, and the workers that reconcile them: at most one
/// worker per device and per IOMMU group at a time, a bounded number in all. A request
/// for a device that is being reconciled runs once more after it, never beside it.
///
/// As many workers run as there are CPUs. One that has waited in the kernel for longer than
/// `slowAfter` (a driver's probe, a module load, a bind that settles: `enterSlowCall`) lets
/// another start or wake in its place, up to `maxWorkers`: slow probes overlap, while
/// instant ones do not make sixteen threads take turns on two cores. Since every worker
/// may be waiting, a thread of the queue's own looks at the time (`overseeSlowCalls`).
///
/// A device whose reconcile runs longer than `stuckAfter` (a probe that never returns) is
/// reported stuck once, and another worker takes its place, so every other device goes on.
package final class ReconcileQueue: @unchecked Sendable {
    private struct Running {
        package var group: Int?
        package var since: ContinuousClock.Instant
        package var reportedStuck = false
        /// Since when its worker waits in the kernel (see `enterSlowCall`).
        package var slowSince: ContinuousClock.Instant?
    }

    private let lock = ConditionLock()
    /// Waiting requests from `head` on (the ones before it are taken): picking the first
    /// stays O(1) however long the queue.
    private var pending: [(address: PCIAddress, group: Int?)] = []
    private var head = 0
    private var pendingSet = Set<PCIAddress>()
    private var again = Set<PCIAddress>()
    private var running: [PCIAddress: Running] = [:]
    private var busyGroups = Set<Int>()
    private var workers = 0
    private var idleWorkers = 0
    /// Idle workers already signalled but not yet running: not idle for the next request.
    private var wakeupsOwed = 0
    /// Whether the overseer of slow calls runs, and whether it waits for one to begin.
    private var overseeing = false, overseerWaits = false
    private var stopping = false
    /// Called (on a worker, outside the lock) each time the queue becomes idle.
    private var onIdle: (@Sendable () -> Void)?

    package let maxWorkers: Int
    /// How many workers run at once outside slow calls: the CPUs the agent may use.
    package let concurrency: Int
    /// How long a call lasts before its worker counts as waiting, not running.
    package let slowAfter = Duration.microseconds(200)
    package let stuckAfter: Duration
    private let work: @Sendable (PCIAddress) -> Void
    private let onStuck: @Sendable (PCIAddress, Duration) -> Void

    package init(workers: Int, stuckAfter: Duration, work: @escaping @Sendable (PCIAddress) -> Void,
         onStuck: @escaping @Sendable (PCIAddress, Duration) -> Void) {
        maxWorkers = max(1, workers)
        concurrency = min(maxWorkers, max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        self.stuckAfter = stuckAfter
        self.work = work
        self.onStuck = onStuck
    }

    /// Has `action` called each time the last pending work is done (the daemon's loop
    /// sleeps in poll() and is woken by it).
    package func whenIdle(_ action: @escaping @Sendable () -> Void) { lock.locked { onIdle = action } }

    /// Asks for `address` to be reconciled; `group` is its IOMMU group, if known.
    package func enqueue(_ address: PCIAddress, group: Int?) {
        lock.locked {
            guard !stopping else { return }
            if running[address] != nil {
                again.insert(address)
            } else if pendingSet.insert(address).inserted {
                pending.append((address, group))
            }
            supply()
        }
    }

    /// The worker reconciling `address` may now wait in the kernel: once it has for
    /// `slowAfter`, another may run.
    package func enterSlowCall(for address: PCIAddress) {
        lock.locked {
            guard let index = running.index(forKey: address), !stopping else { return }
            running.values[index].slowSince = .now
            if !overseeing {
                overseeing = true
                startThread { [self] in overseeSlowCalls() }
            } else if overseerWaits {
                overseerWaits = false
                lock.signal(.slow)
            }
        }
    }

    /// The worker reconciling `address` is back from its slow call.
    package func leaveSlowCall(for address: PCIAddress) {
        lock.locked {
            // In place: `running[address]?.slowSince = nil` took four times as long.
            if let index = running.index(forKey: address) { running.values[index].slowSince = nil }
        }
    }

    /// Wakes when the oldest slow call still short of `slowAfter` reaches it, and lets
    /// another worker run for each worker that waits; with none to time, waits for one.
    private func overseeSlowCalls() {
        lock.locked {
            while !stopping {
                let now = ContinuousClock.now
                while supply(at: now) {}
                let next = running.values.compactMap { $0.slowSince.map { $0 + slowAfter } }.filter { $0 > now }.min()
                overseerWaits = next == nil
                lock.wait(.slow, timeout: next.map { $0 - now })
            }
            overseeing = false
        }
    }

    /// One more worker (an idle one woken, or a new one) for pending work, while fewer
    /// than `concurrency` run: not idle, not stuck, not in a call longer than `slowAfter`.
    /// Under the lock; returns whether it found one.
    @discardableResult
    private func supply(at now: ContinuousClock.Instant = .now) -> Bool {
        let waiting = running.values.count { entry in
            entry.reportedStuck || entry.slowSince.map { now - $0 >= slowAfter } ?? false
        }
        let active = workers - idleWorkers + wakeupsOwed - waiting
        guard !pendingSet.isEmpty, active < concurrency else { return false }
        if idleWorkers > wakeupsOwed {
            wakeupsOwed += 1
            lock.signal(.work)
            return true
        }
        guard mayStartWorker else { return false }
        workers += 1
        startThread { [self] in workerLoop() }
        return true
    }

    /// Blocks until the queue settles: nothing runs but stuck devices, and nothing pending can
    /// start without one of them (see `isSettled`). Returns the stuck devices.
    @discardableResult
    package func waitUntilIdle() -> [PCIAddress] {
        lock.locked {
            while true {
                markStuck()
                supply()
                if isSettled() { return running.keys.sorted() }
                lock.wait(timeout: .milliseconds(100))
            }
        }
    }

    /// Whether nothing goes on until a stuck device returns: no worker runs a device that is
    /// not stuck or is about to take one, and no pending device can start (there is none,
    /// each waits for a device or IOMMU group a stuck one holds, or every worker the queue
    /// may have is stuck). `finishing`: asked by a worker done with its device, which counts
    /// as idle. Under the lock.
    private func isSettled(finishing: Bool = false) -> Bool {
        guard !running.values.contains(where: { !$0.reportedStuck }) else { return false }
        guard !pendingSet.isEmpty, !stopping else { return true }
        let inTransit = workers - idleWorkers - running.count - (finishing ? 1 : 0)
        let canStart = idleWorkers > 0 || finishing || mayStartWorker
        return inTransit <= 0 && !(canStart && pending[head...].contains(where: isTakeable))
    }

    /// Whether another worker may start: up to `maxWorkers`, and one more for each stuck
    /// device, never beyond twice `maxWorkers`. Under the lock.
    private var mayStartWorker: Bool {
        workers < min(maxWorkers + running.values.count(where: \.reportedStuck), 2 * maxWorkers)
    }

    /// Whether a worker may take this pending request now: its device is not running, nor
    /// another of its IOMMU group. Under the lock.
    private func isTakeable(_ item: (address: PCIAddress, group: Int?)) -> Bool {
        running[item.address] == nil && (item.group.map { !busyGroups.contains($0) } ?? true)
    }

    /// Pending devices no worker can take while the stuck ones hold the workers or their
    /// groups (see `isSettled`); empty while work goes on.
    package var starved: [PCIAddress] {
        lock.locked { isSettled() ? pending[head...].map(\.address).sorted() : [] }
    }

    /// Whether a worker is busy; the daemon then wakes to look for stuck devices.
    package var isBusy: Bool { lock.locked { !isSettled() } }

    /// Reports devices that have been running longer than `stuckAfter`; call from time to time.
    package func checkForStuck() { lock.locked { markStuck() } }

    /// Takes no more work; waits up to `grace` for the steps in progress (stuck ones aside).
    /// Returns whether every worker finished.
    @discardableResult
    package func stop(grace: Duration) -> Bool {
        lock.locked {
            stopping = true
            pending.removeAll()
            head = 0
            pendingSet.removeAll()
            again.removeAll()
            lock.broadcast(.work)
            lock.broadcast(.slow)
            let deadline = ContinuousClock.now + grace
            while running.values.contains(where: { !$0.reportedStuck }) && ContinuousClock.now < deadline {
                lock.wait(timeout: .milliseconds(50))
                markStuck()
            }
            return running.isEmpty
        }
    }

    package var isStopping: Bool { lock.locked { stopping } }

    private func markStuck() {
        let now = ContinuousClock.now
        for (address, entry) in running where !entry.reportedStuck && now - entry.since >= stuckAfter {
            running[address]!.reportedStuck = true
            onStuck(address, now - entry.since)
            // Another worker in its place.
            supply(at: now)
        }
    }

    private func workerLoop() {
        while true {
            let next: PCIAddress? = lock.locked {
                while true {
                    if stopping { return nil }
                    if let index = pending[head...].firstIndex(where: isTakeable) {
                        let item = pending[index]
                        if index == head {
                            head += 1
                            if head == pending.count || head > 1024 && head * 2 > pending.count {
                                pending.removeFirst(head)
                                head = 0
                            }
                        } else {
                            pending.remove(at: index)
                        }
                        pendingSet.remove(item.address)
                        running[item.address] = Running(group: item.group, since: .now)
                        if let group = item.group { busyGroups.insert(group) }
                        return item.address
                    }
                    idleWorkers += 1
                    lock.wait(.work)
                    idleWorkers -= 1
                    if wakeupsOwed > 0 { wakeupsOwed -= 1 }
                }
            }
            guard let address = next else {
                lock.locked { workers -= 1 }
                return
            }
            work(address)
            let idle: (@Sendable () -> Void)? = lock.locked {
                let entry = running.removeValue(forKey: address)
                if let group = entry?.group { busyGroups.remove(group) }
                if again.remove(address) != nil && !stopping, pendingSet.insert(address).inserted {
                    pending.append((address, entry?.group))
                }
                // Its group is free again: an idle worker may take a waiting peer.
                supply()
                // Whoever waits for the queue to settle (or to stop) waits for this.
                if isSettled(finishing: true) {
                    lock.broadcast(.progress)
                    return onIdle
                }
                return nil
            }
            idle?()
        }
    }
}
