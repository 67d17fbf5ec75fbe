import HostInterface
import Policy

/// What the agent's own binds and unbinds will announce, and the view each device's
/// reconcile settled on after them, so the events they send need no fresh look at the
/// device: a reconcile that only they asked for starts from that view, and reads again
/// its IOMMU group peers, the group's node (udev may set it after the agent did when it
/// handles the node's `add`) and what the planner reads beyond a snapshot (the device's
/// node). The PCI events are matched in the order the steps cause them.
///
/// Every other event is evidence of a change the agent did not make, and means a fresh
/// look as before: a PCI event the agent's own step does not account for (someone bound,
/// unbound or removed the device), or any event for a device with no view kept. A `vfio`
/// or `vfio-dev` event on its own is never such evidence: the kernel sends one only beside
/// a PCI `bind` or `unbind` of the same device (or a group peer, whose event reaches the
/// device as a fresh look too).
///
/// A view is kept only after a reconcile that bound or unbound, until the PCI events of
/// its steps have all come and been answered, and for `lifetime` at most (the events
/// follow within milliseconds); a fresh look, a `remove`, a lost event or a reload drops it.
package final class OwnEvents: Sendable {
    /// A PCI uevent one of the agent's steps makes the kernel send.
    package enum Expected: Equatable, Sendable {
        /// `bind`, with `DRIVER` naming this driver.
        case bound(String)
        /// `unbind` (the kernel sends it once the driver is gone, without `DRIVER`).
        case unbound
    }

    private struct Entry {
        var expected: [Expected] = []
        var view: HostView?
        var since = ContinuousClock.now
        /// Only events of its own steps (and node events) asked for a reconcile since the
        /// last one began; nil: nothing asked.
        var onlyOwn: Bool?
    }

    private struct Table {
        var entries: [PCIAddress: Entry] = [:]
        /// No entry outlives `lifetime` before then (nil: none is kept): a sweep before it
        /// has nothing to drop, and looks at none of them. Set when the first entry comes
        /// and by each sweep; entries that go meanwhile leave it early, never late.
        var calmUntil: ContinuousClock.Instant?
    }

    private let table = Locked(Table())
    package let lifetime: Duration

    package init(lifetime: Duration = .seconds(10)) { self.lifetime = lifetime }

    /// The events `step` will make the kernel send about the device, to be expected before
    /// it is taken (they may arrive before it returns).
    package static func expected(from step: Step) -> [Expected] {
        switch step.action {
        case .bind(let driver, let from): (from == nil ? [] : [.unbound]) + [.bound(driver)]
        case .unbind: [.unbound]
        default: []
        }
    }

    /// Notes the events `step` will make the kernel send about `address`.
    package func expect(_ address: PCIAddress, _ step: Step) {
        let events = Self.expected(from: step)
        guard !events.isEmpty else { return }
        table.withLock { table in
            if table.entries[address] == nil {
                let entry = Entry()
                table.calmUntil = table.calmUntil ?? entry.since + lifetime
                table.entries[address] = entry
            }
            table.entries[address]!.expected += events
        }
    }

    /// The reconcile of `address` settled on `view`: kept while events of its steps are
    /// still to come or have just come.
    package func settled(_ address: PCIAddress, on view: HostView) {
        table.withLock { table in
            guard table.entries[address] != nil else { return }
            table.entries[address]!.view = view
        }
    }

    /// Whether `event` asks only what a kept view answers (see the type's comment): it is
    /// then taken, and the device marked to start from its view; otherwise, when it is a
    /// PCI event, the device's view is dropped.
    package func take(_ event: UEvent, for address: PCIAddress) -> Bool {
        // A PCI event must be the next one the steps cause; `vfio` and `vfio-dev` events
        // come beside those (nil: nothing to match).
        let awaited: Expected?
        switch (event.subsystem, event.action) {
        case ("pci", "bind"): awaited = event.properties["DRIVER"].map { .bound($0) }
        case ("pci", "unbind"): awaited = .unbound
        case ("vfio", _), ("vfio-dev", _): awaited = nil
        default:
            table.withLock { _ = $0.entries.removeValue(forKey: address) }
            return false
        }
        let isPCI = event.subsystem == "pci"
        return table.withLock { table in
            // Changed where it is kept: an entry taken out and put back cost a hash and the
            // retains of its whole view for every event.
            guard let index = table.entries.index(forKey: address) else { return false }
            // In the order the steps cause them: one that did not come (a step that found
            // the device where it wanted it) leaves the rest unmatched, never waiting to
            // match someone else's event later. The view may still be to come: the
            // reconcile that took the step runs on.
            guard !isPCI || (awaited != nil && table.entries.values[index].expected.first == awaited),
                ContinuousClock.now - table.entries.values[index].since < lifetime
            else {
                table.entries.remove(at: index)
                return false
            }
            if isPCI { table.entries.values[index].expected.removeFirst() }
            table.entries.values[index].onlyOwn = table.entries.values[index].onlyOwn ?? true
            return true
        }
    }

    /// Something else asked for a reconcile of `address`: it starts with a fresh look.
    package func freshLook(_ address: PCIAddress) {
        table.withLock { $0.entries[address]?.onlyOwn = false }
    }

    /// At the start of a reconcile: the view to start from when only the agent's own events
    /// asked for it; otherwise nil, and what was kept of the device is dropped.
    package func begin(_ address: PCIAddress) -> HostView? {
        table.withLock { table in
            guard var entry = table.entries[address] else { return nil }
            guard entry.onlyOwn == true, let view = entry.view, ContinuousClock.now - entry.since < lifetime else {
                table.entries[address] = nil
                return nil
            }
            // Once the PCI events its steps cause have all come, nothing more is kept: a
            // node event after them looks afresh.
            entry.onlyOwn = nil
            table.entries[address] = entry.expected.isEmpty ? nil : entry
            return view
        }
    }

    /// Drops what was kept of `address` (it left), or of every device (events were lost,
    /// the policies changed).
    package func forget(_ address: PCIAddress) { table.withLock { $0.entries[address] = nil } }
    package func forgetAll() { table.withLock { $0 = Table() } }

    /// Drops views kept longer than `lifetime`, whose events did not come. Called for every
    /// batch of events: until one can have outlived it, it looks at no entry (with thousands
    /// kept, in a coldplug of VFs, a look at each held the workers up).
    package func sweep() {
        let now = ContinuousClock.now
        table.withLock { table in
            guard let calm = table.calmUntil, now >= calm else { return }
            table.entries = table.entries.filter { now - $0.value.since < lifetime }
            table.calmUntil = table.entries.values.map(\.since).min().map { $0 + lifetime }
        }
    }

    /// How many devices have something kept (for tests).
    package var count: Int { table.withLock { $0.entries.count } }
}
