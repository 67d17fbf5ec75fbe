import HostInterface
import Policy
import Synchronization

/// The kernel's VFIO variant drivers, read the first time a policy asks for `"vfio"`:
/// `modules.alias` changes only with the kernel.
package final class VariantCache: Sendable {
    private let cached = Mutex<VFIOVariants?>(nil)

    package init() {}

    package func get(_ read: () -> VFIOVariants) -> VFIOVariants {
        if let known = cached.withLock({ $0 }) { return known }
        let variants = read()
        cached.withLock { $0 = variants }
        return variants
    }
}

/// The VFIO drivers the kernel lists, kept while the registered PCI drivers stay the same:
/// the list changes only when a module registers or drops a driver.
package final class VFIODriverCache: Sendable {
    private let cached = Mutex<(registered: Set<String>, drivers: VFIODrivers)?>(nil)

    package init() {}

    /// The list for these registered drivers: the one kept, or `read()`'s. Without them
    /// (nil), whichever was read last.
    package func get(registered: Set<String>?, _ read: () -> VFIODrivers) -> VFIODrivers {
        if let known = cached.withLock({ $0 }), registered == nil || registered == known.registered {
            return known.drivers
        }
        let drivers = read()
        if let registered { cached.withLock { $0 = (registered, drivers) } }
        return drivers
    }
}
