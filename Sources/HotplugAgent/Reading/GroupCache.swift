import Policy
import Synchronization

/// IOMMU groups' members, listed once and kept until a PCI device is added or removed: the
/// kernel puts a device in its group before it announces the device (`add`) and takes it
/// out before `remove`, so nothing else changes a group. Either event, lost events, and a
/// VF count the agent changes forget them all.
package final class GroupCache: Sendable {
    /// Most groups have one member (each VF its own): kept without an array of its own.
    private enum Members {
        case one(PCIAddress)
        case many([PCIAddress])

        init(_ members: [PCIAddress]) { self = members.count == 1 ? .one(members[0]) : .many(members) }

        var addresses: [PCIAddress] {
            switch self {
            case .one(let address): [address]
            case .many(let addresses): addresses
            }
        }
    }

    private struct Kept {
        var members: [Int: Members] = [:]
        /// Counts `forgetAll()`s: a listing begun before one is not kept.
        var generation = 0
    }
    private let kept = Mutex(Kept())

    package init() {}

    /// The group's members kept, or `list()`'s.
    package func members(of group: Int, _ list: () -> [PCIAddress]) -> [PCIAddress] {
        let (known, generation) = kept.withLock { ($0.members[group], $0.generation) }
        if let known { return known.addresses }
        let members = list()
        kept.withLock { if $0.generation == generation { $0.members[group] = Members(members) } }
        return members
    }

    package func forgetAll() {
        kept.withLock {
            $0.members.removeAll()
            $0.generation += 1
        }
    }
}
