import HostInterface
import Policy

/// What cannot change about a PCI function while it exists: its IDs and class, its IOMMU
/// group, and for a VF its PF and the PF's IDs. The kernel fixes all of them when it adds
/// the device and drops them when it removes it. `inode` is its sysfs directory's, which
/// is new for each device the kernel adds.
package struct DeviceIdentity: Sendable, Equatable {
    package var inode: UInt64
    package var id: PCIID
    package var subsystemID: PCIID
    package var classCode: UInt32
    package var iommuGroup: Int?
    package var physfn: PCIAddress?
    package var pfID: PCIID?
}

/// Identities read once and kept while their devices exist, so a reconcile reads only what
/// can change (the driver link and `driver_override`) and one stat of the device directory:
/// an entry is used only with a reading that shows the inode it was read under, so a
/// device that took another's address is read afresh even before its events arrive.
/// A `remove` drops its device's entry, and lost events drop them all, so entries are
/// kept only for devices that are there.
package final class IdentityCache: Sendable {
    private let entries = Locked<[PCIAddress: DeviceIdentity]>([:])

    /// The entry, whatever directory it was read under: what to ask of a directory, and the
    /// inode to ask it under (a reading that shows another is of another device); and the
    /// group to order work by.
    package func entry(_ address: PCIAddress) -> DeviceIdentity? {
        entries.withLock { $0[address] }
    }

    package func store(_ identity: DeviceIdentity, for address: PCIAddress) {
        entries.withLock { $0[address] = identity }
    }

    package func forget(_ address: PCIAddress) {
        _ = entries.withLock { $0.removeValue(forKey: address) }
    }

    package func forgetAll() {
        entries.withLock { $0.removeAll() }
    }

    package var count: Int { entries.withLock { $0.count } }
}
