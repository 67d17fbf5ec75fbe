import HostInterface
import Logging
import Policy

/// Turns events into reconciles. Any event only asks "reconcile this device"; its IOMMU
/// group peers are reconciled with it, since claiming and viability depend on them. The
/// reconciles run on a bounded pool of workers (see `ReconcileQueue`).
package final class Agent: @unchecked Sendable {
    package let reader: SysfsReader
    package let reconciler: Reconciler
    package let log: Logger
    private var queue: ReconcileQueue!

    /// What the agent knows about devices between reconciles.
    package let ledger: Ledger
    /// The host as the last CDI specs were made from it (see `cdiSpecs`).
    let cdiView = KeptView()

    package init(
        reader: SysfsReader, reconciler: Reconciler, ledger: Ledger, log: Logger, workers: Int = 16,
        stuckAfter: Duration = .seconds(30)
    ) {
        self.reader = reader
        self.reconciler = reconciler
        self.ledger = ledger
        self.log = log
        queue = ReconcileQueue(
            workers: workers, stuckAfter: stuckAfter, work: { [unowned self] in reconcile($0) },
            onStuck: { address, time in ledger.noteStuck(address, after: time) })
        let queue = queue!
        reconciler.isStopping = { queue.isStopping }
        reconciler.executor.slowCalls.route(to: queue)
    }

    package var failureCount: Int { ledger.failures }

    /// Whether a worker is busy with a device that still answers.
    package var isBusy: Bool { queue.isBusy }

    /// Has `action` called each time the workers run out of work.
    package func whenIdle(_ action: @escaping @Sendable () -> Void) { queue.whenIdle(action) }

    /// Notes the devices whose writes have not returned for too long; call from time to time.
    package func checkForStuck() { queue.checkForStuck() }

    /// Starts no more work; waits up to `grace` for the steps in progress. Returns whether
    /// every worker finished.
    package func stop(grace: Duration) -> Bool { queue.stop(grace: grace) }

    /// Where each device a policy matches stands now (what `status` prints).
    package func statuses() -> [DeviceStatus] {
        let planner = self.planner
        guard let records = ledger.records, let view = try? plannedView(by: planner) else { return [] }
        return DeviceStatus.all(planner.planAll(in: view), view: view, planner: planner, records: records)
    }

    /// Every device of the host, with what `planner` (the one in force) needs read about them.
    package func plannedView(by planner: Planner? = nil) throws(AgentError) -> HostView {
        let planner = planner ?? self.planner
        let snapshot = try reader.fullView()
        return reader.read(planner.needs(in: snapshot), into: snapshot)
    }

    /// The CDI specs for the host now; nil (after logging why) when it cannot be read (a
    /// device that cannot be read is named in the log, and the devices after it are listed
    /// by address alone: see `Planner.cdiSpecs`). The host as the last specs saw it is
    /// kept, and only what events named since is read again (`KeptView`).
    package func cdiSpecs() -> [CDISpec]? {
        let planner = self.planner
        var view: HostView
        let (kept, changed, generation) = cdiView.take()
        do {
            if let kept {
                let (fresh, read) = try reader.fullView(updating: kept, changed: changed)
                view = reader.read(planner.needs(in: fresh, only: read), into: fresh)
            } else {
                view = try plannedView(by: planner)
            }
        } catch {
            cdiView.keep(nil, generation: generation)
            log.error("cannot read the host for the CDI spec: \(error)")
            return nil
        }
        cdiView.keep(view, generation: generation)
        if let from = Planner.numbersWithheld(in: view) {
            let which = view.unreadable.keys.sorted().map(\.description).joined(separator: ", ")
            let why = "\(which) cannot be read (their numbered names could shift to other devices)"
            log.warning("CDI spec: devices from \(from) on are listed by their address alone while \(why)")
        }
        return planner.cdiSpecs(in: view)
    }

    /// Whether any device waits for a VM to let go of it.
    package var hasWaiting: Bool { !ledger.waiting.isEmpty }

    /// The processes that devices wait for: once one exits, they are looked at again.
    package var waitedFor: Set<Int32> { ledger.waiting.values.reduce(into: Set()) { $0.formUnion($1.holders) } }

    /// Looks again at every device that waits for a VM (the daemon calls it every
    /// `waitRetry`, 10 s, while there are any).
    package func retryWaiting(wait: Bool = true) {
        let waiting = ledger.waiting
        cdiView.changed(waiting.keys)
        for (address, waiting) in waiting { enqueue(address, group: waiting.group) }
        if wait { queue.waitUntilIdle() }
    }

    package var planner: Planner {
        get { reconciler.planner }
        set {
            reconciler.planner = newValue
            ledger.forgetFailedDevices()
            reconciler.own.forgetAll()
            // The state directory read afresh: another agent may have written in it since.
            reader.origins?.forgetWhatWasRead()
            ledger.records?.forgetListing()
            cdiView.invalidate()
        }
    }

    /// Reconciles every PCI device present; `wait`s until all are done unless told not to.
    /// At start and after lost events (`forgettingDeparted`), origin records of devices that
    /// left unseen are dropped first (a running agent drops them on `remove` events).
    package func reconcileAll(wait: Bool = true, forgettingDeparted: Bool = false) {
        cdiView.invalidate()
        reconciler.own.forgetAll()
        revokeIOMMUGrants()
        do {
            let addresses = try reader.addresses()
            if forgettingDeparted, !reconciler.dryRun, let origins = reader.origins {
                for address in origins.sweep(keeping: Set(addresses)) {
                    log.info(
                        "forgot where it came from: it left unseen (while no agent ran, or its events were lost)",
                        metadata: ["device": "\(address)"])
                }
            }
            for address in addresses { enqueue(address, group: try? reader.group(of: address)) }
        } catch {
            ledger.noteFailure()
            log.error("cannot list PCI devices: \(error)")
        }
        if wait { queue.waitUntilIdle() }
    }

    /// Takes back the `/dev/iommu` ACL entries the agent added for users and groups no
    /// policy names any more (at start and after each reload, when the policies change).
    package func revokeIOMMUGrants() {
        let executor = reconciler.executor
        guard let store = executor.iommuGrants else { return }
        let revoked = reconciler.planner.policies.iommuRevocations(recorded: store.load())
        guard !revoked.isEmpty else { return }
        let what = "/dev/iommu: " + revoked.takeBack
        guard !reconciler.dryRun else {
            log.notice("would \(what)")
            return
        }
        do {
            try executor.revokeIOMMU(revoked)
            log.notice("\(what): done")
        } catch {
            ledger.noteFailure()
            log.error("\(what): failed: \(error)")
        }
    }

    /// Reconciles what a batch of events names, each device once however many events name
    /// it: a burst for one device (add, bind, change) is one reconcile.
    package func handle(_ batch: (events: [UEvent], overflowed: Bool), wait: Bool = true) {
        if batch.overflowed {
            log.warning("events were lost (receive buffer overflow); reconciling every device")
            reader.forgetAll()
            // A device that left among the lost events takes its origin record with it.
            reconcileAll(wait: wait, forgettingDeparted: true)
            return
        }
        var targets: [(address: PCIAddress, group: Int?)] = []
        var named = Set<PCIAddress>()
        func target(_ address: PCIAddress, _ group: Int?) {
            if named.insert(address).inserted { targets.append((address, group)) }
        }
        // Devices the events of the agent's own binds and unbinds name (`OwnEvents`): a
        // reconcile starts from what the last one settled on, unless another event names them.
        var own: [PCIAddress: Int?] = [:]
        reconciler.own.sweep()
        for event in batch.events {
            log.debug("event \(event.action) \(event.subsystem) \(event.devpath)")
            // A module registered or dropped a PCI driver.
            if event.subsystem == "drivers" {
                reader.driverCache.forget()
                cdiView.invalidate()
            }
            switch event.target {
            case .device(let address):
                // A PCI device came or went; the `vfio-dev` entry below one comes and goes
                // with its VFIO driver and says nothing of the device itself.
                let came = event.subsystem == "pci" && event.action == "add"
                let went = event.subsystem == "pci" && event.action == "remove"
                // The group of a device that came, as its link names it: read once, for both
                // uses below.
                var cameTo: Int?
                if came || went {
                    // What was known of the device that stood here goes with it; the group it
                    // left (as the kept lists show it, never as a cached identity says: one
                    // read meanwhile may be the new device's) and the group its link names
                    // now have one member less or more.
                    reader.identities.forget(address)
                    reader.groups.forget(containing: address)
                    if came {
                        cameTo = try? reader.groupLink(of: address)
                        if let cameTo { reader.groups.forget(cameTo) } else { reader.groups.forgetAll() }
                    }
                    ledger.forget(address)
                    reconciler.own.forget(address)
                }
                if went {
                    cdiView.changed([address])
                    // Where it came from means nothing for whatever is plugged in next.
                    reader.origins?.remove(address)
                    log.info("removed", metadata: ["device": "\(address)"])
                    continue
                }
                guard !named.contains(address) else { continue }
                let group = came ? cameTo : try? reader.group(of: address)
                if reconciler.own.take(event, for: address) {
                    own.updateValue(group, forKey: address)
                } else {
                    target(address, group)
                }
                // Its peers: claiming and viability depend on it.
                if let group { for peer in reader.groupMembers(group) where peer != address { target(peer, group) } }
            case .group(let group):
                for member in reader.groupMembers(group) {
                    if reconciler.own.take(event, for: member) {
                        own.updateValue(group, forKey: member)
                    } else {
                        target(member, group)
                    }
                }
            case nil:
                continue
            }
        }
        // Every event is also a moment to look again at what waits for a VM.
        for (address, waiting) in ledger.waiting where !named.contains(address) {
            target(address, waiting.group)
        }
        cdiView.changed(targets.map(\.address) + own.keys)
        for (address, group) in targets { enqueue(address, group: group) }
        for (address, group) in own.sorted(by: { $0.key < $1.key }) where !named.contains(address) {
            queue.enqueue(address, group: group)
        }
        if wait { queue.waitUntilIdle() }
    }

    /// Asks for a reconcile that looks at the device afresh.
    private func enqueue(_ address: PCIAddress, group: Int?) {
        reconciler.own.freshLook(address)
        queue.enqueue(address, group: group)
    }

    /// One device, on a worker. A device that failed is left alone while it looks the
    /// same as after its failure.
    private func reconcile(_ address: PCIAddress) {
        if let failed = ledger.failedAs(address), let now = try? reader.device(address), now == failed {
            log.debug(
                "not retried: its last reconcile failed and it has not changed since",
                metadata: ["device": "\(address)"])
            return
        }
        let reconciliation = reconciler.reconcile(address)
        let after = reconciliation.outcome == .failed ? try? reader.device(address) : nil
        var group: Int?
        if case .waiting = reconciliation.outcome { group = try? reader.group(of: address) }
        ledger.note(address, reconciliation, after: after, group: group)
    }

    /// `run --once`: coldplug, then keep reconciling what events and sysfs show until no
    /// device has work left, including devices the agent's own actions brought (new VFs).
    /// Events are followed until they stop coming, then every device is looked at once;
    /// what that finds is done and the same again. Returns whether every action succeeded.
    package func runOnce(events: EventSource, maxRounds: Int = 32) -> Bool {
        reconcileAll(forgettingDeparted: true)
        guard !reconciler.dryRun else {
            handle(events.drain())
            return failureCount == 0
        }
        var rounds = 0
        while rounds < maxRounds {
            let batch = events.drain()
            rounds += 1
            if !batch.events.isEmpty || batch.overflowed {
                handle(batch)
                continue
            }
            let view: HostView
            do { view = try plannedView() } catch {
                ledger.noteFailure()
                log.error("cannot read the host: \(error)")
                break
            }
            let skipped = ledger.skipped
            let pending = planner.planAll(in: view).filter { $0.hasWork && !skipped.contains($0.device.address) }
            if pending.isEmpty { return failureCount == 0 }
            cdiView.changed(pending.map(\.device.address))
            for plan in pending { enqueue(plan.device.address, group: plan.device.iommuGroup) }
            queue.waitUntilIdle()
            // Stuck writes hold every worker the agent may start, or the groups of the rest:
            // looking again cannot help.
            let starved = queue.starved
            if !starved.isEmpty {
                ledger.noteFailure()
                let which = starved.map(\.description).joined(separator: ", ")
                log.error("not reconciled: \(which): every worker is held by a stuck device, or its IOMMU group is")
                break
            }
        }
        return failureCount == 0
    }
}
