import HostInterface
import Policy

/// Devices waiting to be reconciled, and the workers that reconcile them: at most one
/// worker per device and per IOMMU group at a time, a bounded number in all. A request
/// for a device that is being reconciled runs once more after it, never beside it.
///
/// A device whose reconcile runs longer than `stuckAfter` (a probe that never returns) is
/// reported stuck once, and another worker takes its place, so every other device goes on.
package final class ReconcileQueue: @unchecked Sendable {
    private struct Running {
        package var group: Int?
        package var since: ContinuousClock.Instant
        package var reportedStuck = false
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
    private var stopping = false
    /// Called (on a worker, outside the lock) each time the queue becomes idle.
    private var onIdle: (@Sendable () -> Void)?

    package let maxWorkers: Int
    package let stuckAfter: Duration
    private let work: @Sendable (PCIAddress) -> Void
    private let onStuck: @Sendable (PCIAddress, Duration) -> Void

    package init(workers: Int, stuckAfter: Duration, work: @escaping @Sendable (PCIAddress) -> Void,
         onStuck: @escaping @Sendable (PCIAddress, Duration) -> Void) {
        maxWorkers = max(1, workers)
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
            if idleWorkers > wakeupsOwed {
                wakeupsOwed += 1
                lock.signal(.work)
            } else {
                let stuck = running.values.filter(\.reportedStuck).count
                if workers < maxWorkers + stuck && workers < 2 * maxWorkers {
                    workers += 1
                    startThread { [self] in workerLoop() }
                }
            }
        }
    }

    /// Blocks until nothing is pending and every device still running is stuck; returns those.
    @discardableResult
    package func waitUntilIdle() -> [PCIAddress] {
        lock.locked {
            while true {
                markStuck()
                let active = running.filter { !$0.value.reportedStuck }
                if pendingSet.isEmpty && active.isEmpty { return running.keys.sorted() }
                lock.wait(timeout: .milliseconds(100))
            }
        }
    }

    /// Whether a worker is busy; the daemon then wakes to look for stuck devices.
    package var isBusy: Bool { lock.locked { !pendingSet.isEmpty || running.values.contains { !$0.reportedStuck } } }

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
            if !pendingSet.isEmpty && workers < 2 * maxWorkers {
                workers += 1
                startThread { [self] in workerLoop() }
            }
        }
    }

    private func workerLoop() {
        while true {
            let next: PCIAddress? = lock.locked {
                while true {
                    if stopping { return nil }
                    if let index = pending[head...].firstIndex(where: { item in
                        running[item.address] == nil && (item.group.map { !busyGroups.contains($0) } ?? true)
                    }) {
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
                if !pendingSet.isEmpty && idleWorkers > wakeupsOwed {
                    wakeupsOwed += 1
                    lock.signal(.work)
                }
                // Whoever waits for the queue to settle (or to stop) waits for this.
                if (pendingSet.isEmpty || stopping) && !running.values.contains(where: { !$0.reportedStuck }) {
                    lock.broadcast(.progress)
                    return onIdle
                }
                return nil
            }
            idle?()
        }
    }
}
