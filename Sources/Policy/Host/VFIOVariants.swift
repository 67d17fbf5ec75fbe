/// The VFIO drivers made for particular devices (`mlx5_vfio_pci`, `nvgrace_gpu_vfio_pci`,
/// `hisi_acc_vfio_pci`, …), as the running kernel's `modules.alias` declares them:
/// `alias vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i* mlx5_vfio_pci`. A device's driver is
/// the module whose alias matches `vfio_` + its `modalias` with the fewest wildcards, as
/// libvirt picks it; vfio-pci's own alias matches everything, least specifically.
public struct VFIOVariants: Sendable, Equatable {
    public struct Alias: Sendable, Equatable {
        public var pattern: String
        public var module: String
        /// Fewer is more specific.
        public var wildcards: Int
    }

    public let aliases: [Alias]
    /// The PCI driver each loaded module registered (`/sys/module/<m>/drivers/pci:<d>`).
    public let driversOfModules: [String: String]

    public init(aliases: [Alias] = [], driversOfModules: [String: String] = [:]) {
        self.aliases = aliases
        self.driversOfModules = driversOfModules
    }

    /// The `vfio_pci:` aliases of a `modules.alias` file; `pci:` aliases (host drivers)
    /// and anything malformed are passed over.
    public static func parse(modulesAlias text: String) -> [Alias] {
        // Lines and fields split on the newline and space bytes, as the kernel's tools write them.
        text.split(byte: UInt8(ascii: "\n")).compactMap { line in
            let fields = line.split(byte: UInt8(ascii: " "))
            guard fields.count == 3, fields[0] == "alias", fields[1].hasPrefix("vfio_pci:") else { return nil }
            let pattern = String(fields[1])
            return Alias(
                pattern: pattern, module: String(fields[2]), wildcards: pattern.filter { $0 == "*" || $0 == "?" }.count)
        }
    }

    /// The driver `driver = "vfio"` means for a device, its module, and why.
    public func choose(for device: PCIDevice) -> (driver: String, module: String, why: String) {
        let candidates =
            device.modalias.map { modalias in
                aliases.filter { globMatch($0.pattern, "vfio_" + modalias) }
            } ?? []
        guard let best = candidates.min(by: { ($0.wildcards, $0.module) < ($1.wildcards, $1.module) }),
            best.module != "vfio_pci"
        else {
            return ("vfio-pci", "vfio_pci", "no VFIO driver is made for it (no vfio_pci alias names it)")
        }
        let driver = driversOfModules[best.module] ?? best.module
        return (driver, best.module, "the VFIO driver made for it: \(best.module) declares \(best.pattern)")
    }
}
