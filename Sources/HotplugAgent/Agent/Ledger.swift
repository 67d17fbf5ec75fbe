import HostInterface
import Logging
import Policy

/// What the agent knows about devices between reconciles, in one place: which failed and
/// how they looked after, which stopped answering, which wait for a VM and for whom, the
/// failures since start and the actions taken by kind. The status records `status` reads
/// are kept in step here too. Every worker writes to it; the daemon only asks.
package final class Ledger: Sendable {
    private struct Entries {
        /// Devices whose last reconcile failed, with what sysfs showed of them after the
        /// failure. They are not tried again while they still look the same: their own
        /// failure's events (a restore's unbind and bind) would otherwise retry them
        /// forever. A change, a re-add or a policy reload lets them be tried again.
        var failedAt: [PCIAddress: PCIDevice] = [:]
        /// Devices that stopped answering (a probe that never returns).
        var stuck = Set<PCIAddress>()
        /// Failures since start (reconciles, and what failed outside them), for `run --once`.
        var failures = 0
        /// Devices whose remaining work waits for a VM to let go, with their IOMMU groups and
        /// the processes they wait for (where the agent saw them; the daemon watches them
        /// exit): reconciled again on every batch of events and by `retryWaiting()`.
        var waiting: [PCIAddress: Waiting] = [:]
        /// Actions taken and failed since start, by kind (`bind`, `config`, …), for metrics.
        var actions: [String: ActionCount] = [:]
    }

    package struct Waiting: Sendable, Equatable {
        package var group: Int?
        package var holders: Set<Int32>
    }

    private let entries = Locked(Entries())
    /// Where failures are recorded for `status`; nil when the agent keeps no state.
    package let records: StatusStore?
    private let log: Logger

    package init(records: StatusStore?, log: Logger) {
        self.records = records
        self.log = log
    }

    /// What one reconcile came to: after it failed, `after` is how the device looked.
    package func note(_ address: PCIAddress, _ reconciliation: Reconciliation, after: PCIDevice?, group: Int?) {
        entries.withLock {
            for (kind, count) in reconciliation.actions {
                $0.actions[kind, default: ActionCount()].done += count.done
                $0.actions[kind, default: ActionCount()].failed += count.failed
            }
            if case .waiting(let pids) = reconciliation.outcome {
                $0.waiting[address] = Waiting(group: group, holders: pids)
            } else {
                $0.waiting[address] = nil
            }
            if case .failed = reconciliation.outcome {
                $0.failedAt[address] = after
                $0.failures += 1
            } else {
                $0.failedAt[address] = nil
            }
        }
        switch reconciliation.record {
        case .clear?: records?.clear(address)
        case .failed(let what)?: records?.record(address, .failed(what))
        case nil: break
        }
    }

    /// A read or write for the device has not returned for `time` (a probe that hangs, or a
    /// read the kernel holds behind it).
    package func noteStuck(_ address: PCIAddress, after time: Duration) {
        entries.withLock {
            $0.stuck.insert(address)
            $0.failures += 1
        }
        log.error(
            "stuck: a read or write has not returned for \(time); the kernel or its driver hangs. Other devices go on",
            metadata: ["device": "\(address)"])
        records?.record(address, .stuck("a read or write has not returned for \(time)"))
    }

    /// A failure outside any device's reconcile (the host could not be listed or read).
    package func noteFailure() { entries.withLock { $0.failures += 1 } }

    /// The device was added or removed: what was known of the one that stood there goes.
    package func forget(_ address: PCIAddress) {
        entries.withLock {
            $0.failedAt[address] = nil
            $0.stuck.remove(address)
            $0.waiting[address] = nil
        }
    }

    /// New policies: every failed device may be tried again.
    package func forgetFailedDevices() { entries.withLock { $0.failedAt.removeAll() } }

    /// How the device looked after its last failed reconcile; nil when it did not fail.
    package func failedAs(_ address: PCIAddress) -> PCIDevice? { entries.withLock { $0.failedAt[address] } }

    /// Devices not to try again now: failed and unchanged since, or stuck.
    package var skipped: Set<PCIAddress> { entries.withLock { Set($0.failedAt.keys).union($0.stuck) } }

    package var failures: Int { entries.withLock { $0.failures } }
    package var waiting: [PCIAddress: Waiting] { entries.withLock { $0.waiting } }
    package var actions: [String: ActionCount] { entries.withLock { $0.actions } }
}
