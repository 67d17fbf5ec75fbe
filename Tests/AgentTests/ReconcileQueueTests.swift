import Glibc
@testable import HotplugAgent
import Policy
import Synchronization
import Testing

/// How many workers the queue runs at once: as many as CPUs for work that never waits,
/// more while workers wait in slow calls.
struct ReconcileQueueTests {
    /// The most work items that ran at the same time, and how many ran in all.
    final class Overlap: Sendable {
        private let state = Mutex((now: 0, most: 0, done: 0))
        func begin() { state.withLock { $0.now += 1; $0.most = max($0.most, $0.now) } }
        func end() { state.withLock { $0.now -= 1; $0.done += 1 } }
        var most: Int { state.withLock { $0.most } }
        var done: Int { state.withLock { $0.done } }
    }

    static func addresses(_ count: Int) -> [PCIAddress] {
        (0..<count).map { PCIAddress(domain: 0, bus: UInt8($0 + 1), device: 0, function: 0) }
    }

    /// Work that never waits in the kernel runs on as many workers as there are CPUs, not
    /// on sixteen taking turns (each item spins 2 ms, long enough to overlap).
    @Test func workThatNeverWaitsRunsOnAsManyWorkersAsCPUs() {
        let overlap = Overlap()
        let queue = ReconcileQueue(
            workers: 16, stuckAfter: .seconds(30),
            work: { _ in
                overlap.begin()
                let end = ContinuousClock.now + .milliseconds(2)
                while ContinuousClock.now < end {}
                overlap.end()
            }, onStuck: { _, _ in })
        for address in Self.addresses(32) { queue.enqueue(address, group: nil) }
        queue.waitUntilIdle()
        #expect(overlap.done == 32)
        #expect(queue.concurrency == min(16, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #expect(overlap.most <= queue.concurrency, "\(overlap.most) ran at once on \(queue.concurrency) CPUs")
    }

    /// Work that waits in a slow call (a probe of 100 ms) lets other workers run meanwhile:
    /// sixteen such items overlap, up to the sixteen workers.
    @Test func workWaitingInSlowCallsOverlapsUpToTheWorkers() {
        let overlap = Overlap()
        let box = Mutex<ReconcileQueue?>(nil)
        let queue = ReconcileQueue(
            workers: 16, stuckAfter: .seconds(30),
            work: { address in
                let queue = box.withLock { $0 }!
                overlap.begin()
                queue.enterSlowCall(for: address)
                usleep(100_000)
                queue.leaveSlowCall(for: address)
                overlap.end()
            }, onStuck: { _, _ in })
        box.withLock { $0 = queue }
        let start = ContinuousClock.now
        for address in Self.addresses(16) { queue.enqueue(address, group: nil) }
        queue.waitUntilIdle()
        #expect(overlap.done == 16)
        #expect(overlap.most == 16, "only \(overlap.most) waited at once")
        // One after the other they take 1.6 s; a generous bound against that.
        #expect(ContinuousClock.now - start < .milliseconds(800))
    }

    /// Writes that never return (a FIFO where a sysfs file should be) hold their workers; once
    /// they hold every worker the queue may start, or the IOMMU group of what is left, the
    /// wait ends and names what could not start, instead of waiting forever.
    @Test(arguments: [false, true])
    func stuckDevicesHoldingEveryWorkerOrGroupEndTheWait(sameGroup: Bool) {
        let release = Mutex(false)
        let blocking = sameGroup ? 1 : 4
        let queue = ReconcileQueue(
            workers: 2, stuckAfter: .milliseconds(100),
            work: { address in
                guard Int(address.bus) <= blocking else { return }
                while !release.withLock({ $0 }) { usleep(1000) }
            }, onStuck: { _, _ in })
        let start = ContinuousClock.now
        // With `sameGroup`, all of them in one IOMMU group; else each in its own.
        for (index, address) in Self.addresses(9).enumerated() {
            queue.enqueue(address, group: sameGroup ? 7 : index)
        }
        let stuck = queue.waitUntilIdle()
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(stuck == Array(Self.addresses(blocking)), "\(stuck)")
        #expect(queue.starved == Array(Self.addresses(9).dropFirst(blocking)), "\(queue.starved)")
        #expect(!queue.isBusy)
        // Released, the stuck devices finish and what waited runs.
        release.withLock { $0 = true }
        let deadline = ContinuousClock.now + .seconds(5)
        while !queue.waitUntilIdle().isEmpty && ContinuousClock.now < deadline { usleep(10_000) }
        #expect(queue.waitUntilIdle().isEmpty)
        #expect(queue.starved.isEmpty)
    }
}
