import Glibc
import HostInterface
import Policy

/// The running kernel and its modules: its release, its VFIO variants and VFIO drivers.
extension SysfsReader {
    /// The running kernel's release: `/proc/sys/kernel/osrelease` below the root, or, on
    /// the real host where /proc shows only processes (systemd's `ProcSubset=pid`), uname's.
    package func kernelRelease() -> String? {
        if let release = (try? io.read(paths.under("/proc/sys/kernel/osrelease"))).map(firstLine), !release.isEmpty {
            return release
        }
        guard paths.root == "/" else { return nil }
        var name = utsname()
        guard uname(&name) == 0 else { return nil }
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return release.isEmpty ? nil : release
    }

    /// The `vfio_pci:` aliases of the running kernel's `modules.alias` (below the root),
    /// and the PCI driver each of their modules registered once loaded.
    package func vfioVariants() -> VFIOVariants {
        guard let release = kernelRelease(), !release.contains("/"),
            let text = try? io.read(paths.under("/lib/modules/\(release)/modules.alias"))
        else { return VFIOVariants() }
        let aliases = VFIOVariants.parse(modulesAlias: text)
        var drivers: [String: String] = [:]
        for module in Set(aliases.map(\.module)) {
            let names = (try? io.list(paths.under("/sys/module/\(module)/drivers"))) ?? []
            if let driver = names.first(where: { $0.hasPrefix("pci:") }) {
                drivers[module] = String(driver.dropFirst(4))
            }
        }
        return VFIOVariants(aliases: aliases, driversOfModules: drivers)
    }

    /// The registered PCI drivers (`/sys/bus/pci/drivers/*`) and the VFIO drivers among
    /// them (see `VFIODrivers`): the PCI drivers of the modules built on vfio-pci-core
    /// (`/sys/module/vfio_pci_core/holders/`: vfio_pci, mlx5_vfio_pci, …), as the kernel
    /// lists them once loaded. Kept until they change (see `DriverCache`).
    package func registeredDrivers() throws(AgentError) -> (registered: Set<String>, vfio: VFIODrivers) {
        try driverCache.get { () throws(AgentError) in
            let registered: Set<String>
            do throws(IOFailure) { registered = Set(try io.list(paths.pciDrivers)) } catch { throw .io(error) }
            let holders = (try? io.list(paths.under("/sys/module/vfio_pci_core/holders"))) ?? []
            let vfio = VFIODrivers(
                listed: Set(
                    holders.flatMap { module in
                        ((try? io.list(paths.under("/sys/module/\(module)/drivers"))) ?? [])
                            .filter { $0.hasPrefix("pci:") }.map { String($0.dropFirst(4)) }
                    }))
            return (registered, vfio)
        }
    }

    /// The VFIO drivers (see `registeredDrivers`); by name alone where they cannot be read.
    package func vfioDrivers() -> VFIODrivers {
        (try? registeredDrivers().vfio) ?? VFIODrivers()
    }
}
