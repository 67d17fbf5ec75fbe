import HostInterface
import Policy

/// The host as the daemon last made its CDI specs from it, and the devices events named
/// since: the next specs read those again (and their IOMMU groups), not the whole host.
/// An overflow, a `drivers` event, a policy reload or a reconcile of every device means a
/// full look.
package final class KeptView: Sendable {
    private struct State {
        var view: HostView?
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
        state.withLock { $0.changed.formUnion(addresses) }
    }

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
            }
            state.kept += 1
            if state.kept > Self.fullEvery {
                state.kept = 0
                return (nil, [], state.generation)
            }
            return (state.view, state.changed, state.generation)
        }
    }

    /// The view just made from what `take` gave, unless an invalidation came meanwhile.
    /// Devices events named while it was read stay in `changed` for the next look.
    package func keep(_ view: HostView, generation: Int) {
        state.withLock { if $0.generation == generation { $0.view = view } }
    }
}
