import HostInterface
import Policy

/// The host as the daemon last made its CDI specs from it, and the devices events named
/// since: the next specs read those again (and their IOMMU groups), not the whole host.
/// An overflow, a `drivers` event, a policy reload or a reconcile of every device means a
/// full look. Devices are noted only while there is a view to bring up to date or one is
/// being read: with neither (no spec written yet, none at all in a dry run or without
/// CDI) the next look is a full one, and events naming ever new addresses grew the set.
package final class KeptView: Sendable {
    private struct State {
        var view: HostView?
        /// Between `take` and `keep`: what events name meanwhile is for the view being read.
        var reading = false
        var changed = Set<PCIAddress>()
        /// Counts invalidations: a view read across one is not kept.
        var generation = 0
        /// Views kept since the last full look: what no event announces (a node removed by
        /// hand, an event udev dropped) is seen by the next full look, at most `fullEvery`
        /// views on.
        var kept = 0
    }

    /// How many views are kept before a full look again.
    static let fullEvery = 32
    private let state = Locked(State())

    package init() {}

    /// Events named these devices (added, removed, moved, or a peer of one).
    package func changed(_ addresses: some Sequence<PCIAddress>) {
        state.withLock { state in
            guard state.view != nil || state.reading else { return }
            state.changed.formUnion(addresses)
        }
    }

    /// How many devices are noted as changed (for tests).
    package var changedCount: Int { state.withLock { $0.changed.count } }

    /// Nothing kept holds any more: the next look is a full one.
    package func invalidate() {
        state.withLock { state in
            state.view = nil
            state.changed = []
            state.generation += 1
        }
    }

    /// The view kept and what changed since, both given up until `keep`, and the
    /// generation to keep the next view under.
    package func take() -> (view: HostView?, changed: Set<PCIAddress>, generation: Int) {
        state.withLock { state in
            defer {
                state.view = nil
                state.changed = []
                state.reading = true
            }
            state.kept += 1
            if state.kept > Self.fullEvery {
                state.kept = 0
                return (nil, [], state.generation)
            }
            return (state.view, state.changed, state.generation)
        }
    }

    /// The view just made from what `take` gave, unless an invalidation came meanwhile
    /// (nil: none could be made, the next look is a full one). Devices events named while
    /// it was read stay in `changed` for the next look.
    package func keep(_ view: HostView?, generation: Int) {
        state.withLock { state in
            state.reading = false
            if state.generation == generation { state.view = view }
        }
    }
}
