/// The CPU family, for the IOMMU's kernel arguments: Intel's VT-d is off until
/// `intel_iommu=on`; AMD-Vi is on by default (`amd_iommu=on` is not even a valid value);
/// POWER's and arm64's IOMMUs need no argument. `iommu=pt` keeps the host's own DMA fast.
package enum CPUPlatform: String, Codable, Sendable {
    case intel, amd, power, arm64

    /// From `/proc/cpuinfo`: `vendor_id` on x86, `cpu : POWER9` on POWER, `CPU implementer`
    /// on arm64.
    package init?(cpuinfo: String) {
        for line in cpuinfo.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { part in
                String(part.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
            }
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "vendor_id" where parts[1] == "GenuineIntel": self = .intel; return
            case "vendor_id" where parts[1] == "AuthenticAMD" || parts[1] == "HygonGenuine": self = .amd; return
            case "cpu" where parts[1].hasPrefix("POWER"): self = .power; return
            case "CPU implementer": self = .arm64; return
            default: continue
            }
        }
        return nil
    }

    package var iommuArguments: [String] {
        switch self {
        case .intel: ["intel_iommu=on", "iommu=pt"]
        case .amd: ["iommu=pt"]
        case .power, .arm64: []
        }
    }
}
