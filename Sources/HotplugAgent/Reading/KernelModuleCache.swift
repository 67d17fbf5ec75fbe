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

/// The registered PCI drivers, and which of them the kernel lists as VFIO drivers, read
/// once and kept until a module registers or drops a driver. That sends a `drivers` uevent
/// (`/bus/pci/drivers/<name>`), which forgets them, as do lost events, a module the agent
/// loads itself and a bind that did not go as they said.
package final class DriverCache: Sendable {
    private struct Kept {
        var drivers: (registered: Set<String>, vfio: VFIODrivers)?
        /// Counts `forget()`s: a reading begun before one is not kept.
        var generation = 0
    }
    private let kept = Mutex(Kept())

    package init() {}

    /// The drivers kept, or `read()`'s.
    package func get(
        _ read: () throws(AgentError) -> (registered: Set<String>, vfio: VFIODrivers)
    ) throws(AgentError) -> (registered: Set<String>, vfio: VFIODrivers) {
        let (known, generation) = kept.withLock { ($0.drivers, $0.generation) }
        if let known { return known }
        let drivers = try read()
        kept.withLock { if $0.generation == generation { $0.drivers = drivers } }
        return drivers
    }

    package func forget() {
        kept.withLock {
            $0.drivers = nil
            $0.generation += 1
        }
    }
}
