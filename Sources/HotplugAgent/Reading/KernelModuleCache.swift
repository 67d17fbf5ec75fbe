import HostInterface
import Policy

/// The kernel's VFIO variant drivers, read the first time a policy asks for `"vfio"`:
/// `modules.alias` changes only with the kernel.
package final class VariantCache: Sendable {
    private let cached = Locked<VFIOVariants?>(nil)

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
    package typealias Drivers = (registered: Set<String>, vfio: VFIODrivers)
    /// One entry: the PCI bus's.
    private let kept = KeptUntilForgotten<String, Drivers, Never>()

    package init() {}

    /// The drivers kept, or `read()`'s.
    package func get(_ read: () throws(AgentError) -> Drivers) throws(AgentError) -> Drivers {
        try kept.value(for: "pci", read)
    }

    package func forget() { kept.forgetAll() }
}
