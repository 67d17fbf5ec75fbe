import HostInterface
import Policy

/// The files of a device directory: what each reads, what each accepts, which are links
/// leading out of the directory.
extension SimulatedState {
    static let resetMethods: Set<String> = ["flr", "af_flr", "pm", "bus", "device_specific", "acpi", "cxl_bus"]

    /// Interfaces and disks of devices a host driver has, in address order.
    var visibleInterfaces: [HostDescription.Interface] {
        hostUsers.sorted().flatMap { devices[$0].map { $0.hostDriverHasIt ? $0.interfaces : [] } ?? [] }
    }
    var visibleDisks: [HostDescription.Disk] {
        hostUsers.sorted().flatMap { devices[$0].map { $0.hostDriverHasIt ? $0.disks : [] } ?? [] }
    }

    func interface(_ name: String) -> (PCIAddress, HostDescription.Interface)? {
        for address in hostUsers {
            guard let device = devices[address], device.hostDriverHasIt else { continue }
            if let found = device.interfaces.first(where: { $0.name == name }) { return (address, found) }
        }
        return nil
    }

    func disk(_ name: String) -> (PCIAddress, HostDescription.Disk)? {
        for address in hostUsers {
            guard let device = devices[address], device.hostDriverHasIt else { continue }
            if let found = device.disks.first(where: { $0.name == name }) { return (address, found) }
        }
        return nil
    }

    /// Names the kernel itself provides for this device (besides `attributes`).
    func fixedNames(_ device: Device) -> [String] {
        var names = [
            "vendor", "device", "subsystem_vendor", "subsystem_device", "class", "driver_override", "config",
            "remove", "rescan", "subsystem", "modalias", "uevent"
        ]
        if PCIDevice.isVGA(classCode: device.classCode) { names.append("boot_vga") }
        if device.attributes["reset_method"] != nil { names.append("reset") }
        if device.driver != nil { names.append("driver") }
        if device.group != nil { names.append("iommu_group") }
        if device.sriov != nil {
            names += [
                "sriov_totalvfs", "sriov_numvfs", "sriov_drivers_autoprobe", "sriov_offset", "sriov_stride",
                "sriov_vf_device"
            ]
            names += vfs(of: device.address).indices.map { "virtfn\($0)" }
        }
        if device.physfn != nil && device.linked { names.append("physfn") }
        return names
    }

    func readAttribute(_ address: PCIAddress, _ name: String) throws(Errno) -> String {
        guard let device = devices[address] else { throw .ENOENT }
        if name.hasPrefix("vfio-dev/") {
            // Its iommufd node's number, while it has one.
            guard let number = device.deviceNode, name == "vfio-dev/vfio\(number)/dev" else { throw .ENOENT }
            return "\(Self.vfioDeviceMajor):\(number)\n"
        }
        switch name {
        case "vendor": return "0x\(hex(device.id.vendor, width: 4))\n"
        case "device": return "0x\(hex(device.id.device, width: 4))\n"
        case "subsystem_vendor": return "0x\(hex(device.subsystemID?.vendor ?? 0, width: 4))\n"
        case "subsystem_device": return "0x\(hex(device.subsystemID?.device ?? 0, width: 4))\n"
        case "class": return "0x\(hex(device.classCode, width: 6))\n"
        case "driver_override": return (device.override ?? "(null)") + "\n"
        case "boot_vga" where PCIDevice.isVGA(classCode: device.classCode): return device.bootVGA ? "1\n" : "0\n"
        case "config": return String(decoding: device.config, as: UTF8.self)
        case "modalias": return device.modalias + "\n"
        case "uevent": return ueventText(address)
        case "enable": return isOpenThroughVFIO(device) ? "1\n" : "0\n"
        default: break
        }
        if let sriov = device.sriov {
            switch name {
            case "sriov_totalvfs": return "\(sriov.total)\n"
            case "sriov_numvfs": return "\(sriov.count)\n"
            case "sriov_drivers_autoprobe": return sriov.autoprobe ? "1\n" : "0\n"
            case "sriov_offset": return "\(sriov.offset)\n"
            case "sriov_stride": return "\(sriov.stride)\n"
            case "sriov_vf_device": return "\(hex(sriov.vfDevice, width: 4))\n"
            default: break
            }
        }
        guard let value = device.attributes[name] else { throw isDirectory(device, name) ? .EISDIR : .ENOENT }
        return value + "\n"
    }

    /// Stores a written value the way each attribute's store function does.
    mutating func writeAttribute(_ address: PCIAddress, _ name: String, _ value: String) throws(Errno) {
        guard let device = devices[address] else { throw .ENOENT }
        let text = firstLine(value)
        switch name {
        case "driver_override":
            // A zero-byte write is no write at all; "" or "\n" clears the override.
            guard !value.isEmpty else { return }
            devices[address]!.override = text.isEmpty ? nil : text
        case "vendor", "device", "subsystem_vendor", "subsystem_device", "class", "boot_vga", "sriov_totalvfs",
            "sriov_offset", "sriov_stride", "sriov_vf_device":
            throw .EACCES
        case "sriov_numvfs":
            try setNumVFs(address, value)
        case "sriov_drivers_autoprobe" where device.sriov != nil:
            guard text == "0" || text == "1" else { throw .EINVAL }
            devices[address]!.sriov!.autoprobe = text == "1"
        case "reset_method" where device.attributes[name] != nil:
            // "\n" disables every reset; "default" restores; each name must be supported.
            if text.isEmpty {
                devices[address]!.attributes[name] = ""
            } else if text == "default" {
                devices[address]!.attributes[name] = device.defaultResetMethod ?? ""
            } else {
                let wanted = text.split(separator: " ").map(String.init)
                let supported = Set((device.defaultResetMethod ?? "").split(separator: " ").map(String.init))
                guard wanted.allSatisfy({ Self.resetMethods.contains($0) && supported.contains($0) }) else {
                    throw .EINVAL
                }
                devices[address]!.attributes[name] = wanted.joined(separator: " ")
            }
        case "d3cold_allowed" where device.attributes[name] != nil:
            guard text == "0" || text == "1" else { throw .EINVAL }
            devices[address]!.attributes[name] = text
        case "power/control" where device.attributes[name] != nil:
            guard text == "on" || text == "auto" else { throw .EINVAL }
            devices[address]!.attributes[name] = text
        default:
            guard device.attributes[name] != nil else { throw isDirectory(device, name) ? .EISDIR : .ENOENT }
            devices[address]!.attributes[name] = text
        }
    }

    func isDirectory(_ device: Device, _ path: String) -> Bool {
        device.attributes.keys.contains { $0.hasPrefix(path + "/") }
    }

    /// Entries of the device directory or of a directory below it.
    func listDevice(_ address: PCIAddress, _ path: String) throws(Errno) -> [String] {
        guard let device = devices[address] else { throw .ENOENT }
        if path.isEmpty {
            let nested = device.attributes.keys.map { String($0.split(separator: "/")[0]) }
            return Array(Set(fixedNames(device) + nested + children(of: address).map(\.description))).sorted()
        }
        if path == "driver", let driver = device.driver {
            return ["bind", "unbind", "new_id", "remove_id"]
                + devices.values.filter { $0.driver == driver }.map(\.address.description)
        }
        guard isDirectory(device, path) else { throw device.attributes[path] != nil ? .ENOTDIR : .ENOENT }
        let prefix = path + "/"
        return Array(
            Set(
                device.attributes.keys.filter { $0.hasPrefix(prefix) }.map {
                    String($0.dropFirst(prefix.count).split(separator: "/")[0])
                })
        ).sorted()
    }

    /// Where a path below the device directory really is, with every link followed
    /// (relative to `/sys`); throws ENOENT for what does not exist.
    func resolveDevicePath(_ address: PCIAddress, _ path: String) throws(Errno) -> String {
        guard let device = devices[address] else { throw .ENOENT }
        let here = "/sys" + devpath(address)
        if path.isEmpty { return here }
        let parts = path.split(separator: "/").map(String.init)
        let rest = parts.dropFirst().joined(separator: "/")
        let below = { (base: String) in rest.isEmpty ? base : base + "/" + rest }
        switch parts[0] {
        case "driver":
            guard let driver = device.driver else { throw .ENOENT }
            return below("/sys/bus/pci/drivers/\(driver)")
        case "iommu_group":
            guard let group = device.group else { throw .ENOENT }
            return below("/sys/kernel/iommu_groups/\(group)")
        case "subsystem":
            return below("/sys/bus/pci")
        case "physfn":
            guard let pf = device.physfn, device.linked else { throw .ENOENT }
            return try resolveDevicePath(pf, rest)
        case let link where link.hasPrefix("virtfn"):
            guard let index = Int(link.dropFirst(6)), index < vfs(of: address).count else { throw .ENOENT }
            return try resolveDevicePath(vfs(of: address)[index], rest)
        default:
            guard fixedNames(device).contains(path) || device.attributes[path] != nil || isDirectory(device, path)
            else { throw .ENOENT }
            return here + "/" + path
        }
    }
}
