import HostInterface
import Policy
import Synchronization

/// The kernel's VFIO variant drivers, read the first time a policy asks for `"vfio"`:
/// `modules.alias` changes only with the kernel.
package final class VariantCache: Sendable {
    private let cached = Mutex<VFIOVariants?>(nil)

    package func get(_ read: () -> VFIOVariants) -> VFIOVariants {
        if let known = cached.withLock({ $0 }) { return known }
        let variants = read()
        cached.withLock { $0 = variants }
        return variants
    }
}
