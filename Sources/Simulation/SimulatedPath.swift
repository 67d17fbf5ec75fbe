import HostInterface
import Policy

package enum SimulationError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    package var description: String {
        switch self {
        case .invalid(let what): "invalid host description: \(what)"
        }
    }
}

/// A path under the simulated root, as the model understands it.
enum SimulatedPath: Equatable {
    case devicesDir, deviceDir(PCIAddress), deviceFile(PCIAddress, String)
    case driversDir, driverDir(String), driverFile(String, String), driversProbe
    case groupsDir, groupDevices(Int)
    case vfioDir, vfioNode(Int)
    /// `/dev/vfio/devices/vfioN`.
    case vfioDeviceNode(Int)
    /// `/sys/class/net`, and `/sys/class/net/eno1/flags` as ("net", "eno1", "flags").
    case classDir(String), classEntry(String, String, String)
    case proc(String)
    /// `/sys/devices/virtual/nvme-subsystem/<subsystem>[/<entry>]`.
    case nvmeSubsystem(String, String)
    /// `/dev/<name>`: a block device node.
    case devNode(String)
    /// A file below `/lib/modules` (`<release>/modules.alias`).
    case moduleFile(String)
    /// `/sys/module/<module>/drivers` and `/sys/module/<module>/holders`.
    case moduleDrivers(String)
    case moduleHolders(String)
    case other

    init(_ path: String, root: HostPaths) {
        let relative =
            root.root == "/" ? path : (path.hasPrefix(root.root + "/") ? String(path.dropFirst(root.root.count)) : "")
        let parts = relative.split(byte: UInt8(ascii: "/")).map(String.init)
        switch parts.count {
        case 4 where parts[0...3] == ["sys", "bus", "pci", "devices"]: self = .devicesDir
        case 4 where parts[0...3] == ["sys", "bus", "pci", "drivers"]: self = .driversDir
        case 4 where parts[0...3] == ["sys", "bus", "pci", "drivers_probe"]: self = .driversProbe
        case 3 where parts == ["sys", "kernel", "iommu_groups"]: self = .groupsDir
        case 2 where parts == ["dev", "vfio"]: self = .vfioDir
        case 3 where parts[0...1] == ["dev", "vfio"]: self = Int(parts[2]).map { .vfioNode($0) } ?? .other
        case 4 where parts[0...2] == ["dev", "vfio", "devices"] && parts[3].hasPrefix("vfio"):
            self = Int(parts[3].dropFirst(4)).map { .vfioDeviceNode($0) } ?? .other
        case 2 where parts[0] == "dev": self = .devNode(parts[1])
        case 4... where parts[0...1] == ["lib", "modules"] || parts[0...2] == ["usr", "lib", "modules"]:
            self = .moduleFile(parts[(parts[0] == "lib" ? 2 : 3)...].joined(separator: "/"))
        case 4 where parts[0...1] == ["sys", "module"] && parts[3] == "drivers": self = .moduleDrivers(parts[2])
        case 4 where parts[0...1] == ["sys", "module"] && parts[3] == "holders": self = .moduleHolders(parts[2])
        case 5 where parts[0...3] == ["sys", "devices", "virtual", "nvme-subsystem"]:
            self = .nvmeSubsystem(parts[4], "")
        case 6 where parts[0...3] == ["sys", "devices", "virtual", "nvme-subsystem"]:
            self = .nvmeSubsystem(parts[4], parts[5])
        case 5 where parts[0...2] == ["sys", "kernel", "iommu_groups"] && parts[4] == "devices":
            self = Int(parts[3]).map { .groupDevices($0) } ?? .other
        case 5 where parts[0...3] == ["sys", "bus", "pci", "devices"]:
            self = PCIAddress(parts[4]).map { .deviceDir($0) } ?? .other
        case 6... where parts[0...3] == ["sys", "bus", "pci", "devices"]:
            self = PCIAddress(parts[4]).map { .deviceFile($0, parts[5...].joined(separator: "/")) } ?? .other
        case 3 where parts[0...1] == ["sys", "class"]: self = .classDir(parts[2])
        case 4... where parts[0...1] == ["sys", "class"]:
            self = .classEntry(parts[2], parts[3], parts[4...].joined(separator: "/"))
        case 2... where parts[0] == "proc": self = .proc(parts[1...].joined(separator: "/"))
        case 5 where parts[0...3] == ["sys", "bus", "pci", "drivers"]: self = .driverDir(parts[4])
        case 6 where parts[0...3] == ["sys", "bus", "pci", "drivers"]: self = .driverFile(parts[4], parts[5])
        default: self = .other
        }
    }
}
