import HostInterface
import Logging
import Policy

/// Steps of one kind taken, and failed.
package struct ActionCount: Sendable, Equatable {
    package var done = 0
    package var failed = 0
}

/// What reconciling a device came to, for the agent's ledger: the outcome, the actions
/// taken and failed by kind, and what its status record becomes.
package struct Reconciliation: Equatable {
    package enum Record: Equatable {
        /// Nothing is left to do: a failure recorded before is over.
        case clear
        /// This step failed with this error.
        case failed(String)
    }

    package var outcome: Reconciler.Outcome
    package var actions: [String: ActionCount] = [:]
    package var record: Record?

    init(_ outcome: Reconciler.Outcome, actions: [String: ActionCount] = [:], record: Record? = nil) {
        self.outcome = outcome
        self.actions = actions
        self.record = record
    }
}

/// Brings one device to what its policy wants, level-triggered: read sysfs, plan, act, and
/// read again until nothing is left to do. The outcome depends only on what sysfs shows, so
/// repeated, missed or reordered events do no harm.
package final class Reconciler: @unchecked Sendable {
    package enum Outcome: Equatable {
        /// Nothing (more) to do.
        case settled
        /// The device is not there (any more).
        case absent
        /// A step failed; the error was logged.
        case failed
        /// What is left waits until a VM lets go of the device (these processes, where the
        /// agent saw them); look again later, or as soon as one of them exits.
        case waiting(on: Set<Int32>)
    }

    package let reader: SysfsReader
    package let executor: Executor
    private let currentPlanner: Locked<Planner>
    package let dryRun: Bool
    package let log: Logger
    /// Set by the agent: once it says so, no further step is started.
    package var isStopping: @Sendable () -> Bool = { false }

    /// The policies in force; a reload swaps them while workers run.
    package var planner: Planner {
        get { currentPlanner.withLock { $0 } }
        set { currentPlanner.withLock { $0 = newValue } }
    }
    /// Rounds of read-plan-act before giving up on a device that does not settle.
    package let maxRounds = 4
    /// What the events of its own binds and unbinds need read again (see `OwnEvents`).
    package let own = OwnEvents()

    package init(reader: SysfsReader, executor: Executor, planner: Planner, dryRun: Bool, log: Logger) {
        self.reader = reader
        self.executor = executor
        self.currentPlanner = Locked(planner)
        self.dryRun = dryRun
        self.log = log
    }

    /// Reconciles the device, from the view its last reconcile settled on when only the
    /// events of that one's own steps asked for this one (`OwnEvents`). Should that fail,
    /// events may have overtaken the view: it is done again from a fresh look, and only
    /// that one's outcome counts (a failure is recorded against the device as it is).
    @discardableResult
    package func reconcile(_ address: PCIAddress) -> Reconciliation {
        guard !dryRun, let kept = own.begin(address) else { return reconcile(address, from: nil) }
        let quick = reconcile(address, from: kept)
        guard quick.outcome == .failed else { return quick }
        own.forget(address)
        var fresh = reconcile(address, from: nil)
        // What the first one did is done; what failed there is overtaken by the second.
        for (kind, count) in quick.actions { fresh.actions[kind, default: ActionCount()].done += count.done }
        return fresh
    }

    private func reconcile(_ address: PCIAddress, from kept: HostView?) -> Reconciliation {
        var actions: [String: ActionCount] = [:]
        // The view as the last round's steps left it, each verified as it was done (see
        // `HostView.after`), or, for the first round, the kept one; nil: look afresh.
        var done: HostView? = kept
        for round in 0..<maxRounds {
            let plan: DevicePlan, view: HostView
            do throws(AgentError) {
                let planner = self.planner
                let snapshot: HostView
                if round == 0, let kept {
                    snapshot = try reader.refreshingGroup(of: address, in: kept)
                } else if let done, let confirmed = try reader.confirming(done, address) {
                    snapshot = confirmed
                } else {
                    snapshot = try reader.view(around: [address])
                }
                view = reader.read(planner.needs(in: snapshot), into: snapshot)
                plan = planner.plan(for: view.devices[address]!, in: view)
            } catch where error.isGone {
                log.info("left before it could be read", metadata: ["device": "\(address)"])
                return Reconciliation(.absent, actions: actions)
            } catch {
                log.error("cannot read: \(error)", metadata: ["device": "\(address)"])
                return Reconciliation(.failed, actions: actions)
            }
            let meta: Logger.Metadata = ["device": "\(address)", "policy": "\(plan.policy ?? "-")"]
            if round == 0 {
                if plan.policy == nil { log.debug("no policy matches", metadata: meta) }
                for refusal in plan.refusals { log.notice("\(refusal)", metadata: meta) }
                for wait in plan.waits { log.notice("waiting: \(wait.what): \(wait.reason)", metadata: meta) }
                for warning in plan.warnings { log.warning("\(warning)", metadata: meta) }
            }
            guard plan.hasWork else {
                let outcome: Outcome = plan.waits.isEmpty ? .settled : .waiting(on: plan.device.holderPIDs)
                if outcome == .settled { own.settled(address, on: view) }
                return Reconciliation(outcome, actions: actions, record: dryRun ? nil : .clear)
            }
            if dryRun {
                for step in plan.steps { log.info("would \(step)", metadata: meta) }
                return Reconciliation(.settled)
            }
            // The device as read for this plan, until a step may have moved it.
            var seen: PCIDevice? = done == nil ? plan.device : nil
            for step in plan.steps {
                if isStopping() { return Reconciliation(.settled, actions: actions) }
                log.info("\(step)", metadata: meta)
                own.expect(address, step)
                do {
                    try executor.perform(step, on: address, seen: seen)
                    if step.action.movesDevice { seen = nil }
                    actions[step.action.kind, default: ActionCount()].done += 1
                } catch where error.isGone {
                    // Its record goes with it, also when its `remove` was handled before the
                    // record was written: whatever comes there next did not come from it.
                    reader.origins?.remove(address)
                    log.info("left during \(step.action.summary)", metadata: meta)
                    return Reconciliation(.absent, actions: actions)
                } catch .held(_, let holders, let pids) {
                    let who = holders.joined(separator: ", ")
                    log.notice("waiting: \(step.action.summary): \(who) (opened since it was planned)", metadata: meta)
                    return Reconciliation(.waiting(on: pids), actions: actions)
                } catch {
                    log.error("failed: \(step.action.summary): \(error)", metadata: meta)
                    actions[step.action.kind, default: ActionCount()].failed += 1
                    return Reconciliation(
                        .failed, actions: actions, record: .failed("\(step.action.summary): \(error)"))
                }
            }
            done = view.after(plan.steps, on: address)
        }
        log.error("did not settle after \(maxRounds) rounds", metadata: ["device": "\(address)"])
        return Reconciliation(.failed, actions: actions)
    }
}
