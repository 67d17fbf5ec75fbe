/// The one answer to "is this driver a VFIO driver": one the kernel lists as built on
/// vfio-pci-core (the PCI drivers of the modules in `/sys/module/vfio_pci_core/holders/`,
/// where it was read), or one named as vfio-pci and its vendor variants are (`vfio-pci`,
/// `mlx5_vfio_pci`, `nvgrace_gpu_vfio_pci`), for drivers not loaded yet.
public struct VFIODrivers: Sendable, Hashable {
    /// The drivers the kernel lists; empty where it was not read.
    public var listed: Set<String>

    public init(listed: Set<String> = []) {
        self.listed = listed
    }

    /// Asked some thirty times per claim: names compared one by one (a handful are listed),
    /// never hashed (a set lookup hashed the name each time, some 250 instructions).
    public func contains(_ driver: String?) -> Bool {
        guard let driver else { return false }
        return driver == "vfio-pci" || driver.hasSuffix("_vfio_pci") || driver.hasSuffix("-vfio-pci")
            || listed.contains { $0 == driver }
    }

    /// A group is usable by a VM only when each member is on a VFIO driver, pci-stub,
    /// pcieport (bridges) or nothing.
    public func keepGroupViable(_ driver: String?) -> Bool {
        guard let driver else { return true }
        return contains(driver) || driver == "pci-stub" || driver == "pcieport"
    }
}
