import Policy

/// IOMMU groups' members, listed once and kept until a PCI device is added to the group or
/// removed from it: the kernel puts a device in its group before it announces the device
/// (`add`) and takes it out before `remove`, so nothing else changes a group. Either event
/// forgets the groups whose kept members name that address (the one it left, as listed)
/// and, on `add`, the group its `iommu_group` link names (all of them where that cannot
/// be read); lost events and a VF count the agent changes forget them all.
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

    /// Tagged by member, so `forget(containing:)` finds the groups that list an address.
    private let kept = KeptUntilForgotten<Int, Members, PCIAddress> { $0.addresses }

    package init() {}

    /// The group's members kept, or `list()`'s. A group with none is not kept: the kernel
    /// has no such group (it frees one with its last device), and nothing would forget it
    /// (no member names it), so events naming groups that do not exist grew the cache.
    package func members(of group: Int, _ list: () -> [PCIAddress]) -> [PCIAddress] {
        kept.value(for: group, keeping: { !$0.addresses.isEmpty }) { Members(list()) }.addresses
    }

    package func forget(_ group: Int) { kept.forget(group) }

    /// Forgets the groups whose kept members include `address`: whatever stood there left.
    package func forget(containing address: PCIAddress) {
        kept.forget(tagged: address)
    }

    package func forgetAll() { kept.forgetAll() }

    /// How many groups' members are kept (for tests).
    package var count: Int { kept.count }
}
