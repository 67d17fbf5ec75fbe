import HostInterface
import Policy

/// What cannot change about a PCI function while it exists: its IDs and class, its IOMMU
/// group, and for a VF its PF and the PF's IDs. The kernel fixes all of them when it adds
/// the device and drops them when it removes it. `fileSystem` and `inode` are its sysfs
/// directory's: its inode is new for each device the kernel adds.
package struct DeviceIdentity: Sendable, Equatable {
    package var fileSystem: UInt64
    package var inode: UInt64
    package var id: PCIID
    package var subsystemID: PCIID
    package var classCode: UInt32
    package var iommuGroup: Int?
    package var physfn: PCIAddress?
    package var pfID: PCIID?

    /// Whether `reading` is of the directory this identity was read from: sysfs (only there
    /// does an inode tell a device apart), the same file system and the same inode.
    package func isOf(_ reading: DirectoryReading) -> Bool {
        reading.tellsDeviceApart && reading.shows(fileSystem: fileSystem, inode: inode)
    }
}

/// Identities read once and kept while their devices exist, so a reconcile reads only what
/// can change (the driver link and `driver_override`) and one stat of the device directory:
/// an entry is used only with a reading of the directory it was read from (`isOf`), so a
/// device that took another's address is read afresh even before its events arrive; none
/// is kept where inodes do not tell devices apart (a tree of files, not sysfs).
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
