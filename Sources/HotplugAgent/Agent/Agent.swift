import Logging
import Policy

/// Turns events into reconciles. Any event only asks "reconcile this device"; its IOMMU
/// group peers are reconciled with it, since claiming and viability depend on them.
final class Agent: @unchecked Sendable {
    let reader: SysfsReader
    let reconciler: Reconciler
    let log: Logger
    /// Devices whose last reconcile failed, with what sysfs showed of them after the failure.
    /// They are not tried again while they still look the same: their own failure's events
    /// (a restore's unbind and bind) would otherwise retry them forever. A change, a re-add
    /// or a policy reload lets them be tried again.
    private(set) var failedAt: [PCIAddress: PCIDevice] = [:]
    /// Failed reconciles since start, for `run --once`'s exit status.
    private(set) var failures = 0

    init(reader: SysfsReader, reconciler: Reconciler, log: Logger) {
        self.reader = reader
        self.reconciler = reconciler
        self.log = log
    }

    var planner: Planner {
        get { reconciler.planner }
        set {
            reconciler.planner = newValue
            failedAt.removeAll()
        }
    }

    /// Reconciles every PCI device present, in address order.
    func reconcileAll() {
        do {
            for address in try reader.addresses() { reconcile(address) }
        } catch {
            failures += 1
            log.error("cannot list PCI devices: \(error)")
        }
    }

    /// Reconciles what a batch of events names, each device once.
    func handle(_ batch: (events: [UEvent], overflowed: Bool)) {
        if batch.overflowed {
            log.warning("events were lost (receive buffer overflow); reconciling every device")
            reconcileAll()
            return
        }
        var seen = Set<PCIAddress>()
        var order: [PCIAddress] = []
        func add(_ addresses: [PCIAddress]) {
            for address in addresses where seen.insert(address).inserted { order.append(address) }
        }
        for event in batch.events {
            log.debug("event \(event.action) \(event.subsystem) \(event.devpath)")
            switch event.target {
            case .device(let address):
                if event.action == "remove" || event.action == "add" { failedAt[address] = nil }
                if event.action == "remove" {
                    log.info("removed", metadata: ["device": "\(address)"])
                    continue
                }
                add([address])
                if let group = try? reader.device(address).iommuGroup { add(reader.groupMembers(group)) }
            case .group(let group):
                add(reader.groupMembers(group))
            case nil:
                continue
            }
        }
        for address in order { reconcile(address) }
    }

    private func reconcile(_ address: PCIAddress) {
        if let failed = failedAt[address], let now = try? reader.device(address), now == failed {
            log.debug("not retried: its last reconcile failed and it has not changed since", metadata: ["device": "\(address)"])
            return
        }
        if reconciler.reconcile(address) == .failed {
            failedAt[address] = try? reader.device(address)
            failures += 1
        } else {
            failedAt[address] = nil
        }
    }

    /// `run --once`: coldplug, then keep reconciling what events and sysfs show until no
    /// device has work left, including devices the agent's own actions brought (new VFs).
    /// Returns whether every action succeeded.
    func runOnce(events: EventSource, maxRounds: Int = 32) -> Bool {
        reconcileAll()
        handle(events.drain())
        guard !reconciler.dryRun else { return failures == 0 }
        for _ in 0..<maxRounds {
            handle(events.drain())
            let view: HostView
            do { view = reader.enrich(try reader.fullView(), for: planner) } catch {
                failures += 1
                log.error("cannot read the host: \(error)")
                break
            }
            let pending = planner.planAll(in: view).filter { $0.hasWork && failedAt[$0.device.address] == nil }
            if pending.isEmpty { return failures == 0 }
            for plan in pending { reconcile(plan.device.address) }
        }
        return failures == 0
    }
}
