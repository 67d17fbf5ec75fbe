import HostInterface
import Policy

/// A device directory as the kernel lays it out for paths resolved beneath it: links
/// (`driver`, `iommu_group`, `subsystem`, `physfn`, `virtfnN`) that no path may pass
/// through, the directories of child functions below a bridge (real directories, which
/// only the agent's own rules keep it out of), and write-only attributes.
extension SimulatedState {
    /// Attributes every device has that can be written but not read (mode 0200).
    static let writeOnlyNames: Set<String> = ["remove", "rescan", "reset"]

    func isLink(_ device: Device, _ name: String) -> Bool {
        switch name {
        case "driver": return device.driver != nil
        case "iommu_group": return device.group != nil
        case "subsystem": return true
        case "physfn": return device.physfn != nil && device.linked
        default:
            guard name.hasPrefix("virtfn"), let index = Int(name.dropFirst(6)) else { return false }
            return index >= 0 && index < vfs(of: device.address).count
        }
    }

    func isWriteOnly(_ device: Device, _ name: String) -> Bool {
        Self.writeOnlyNames.contains(name) || device.writeOnly.contains(name)
    }

    /// The functions whose upstream bridge is `address`: directories inside its own.
    func children(of address: PCIAddress) -> [PCIAddress] {
        devices.values.filter { $0.parent == address }.map(\.address).sorted()
    }

    /// The device and the path within it that `path` below `address` reaches, entering child
    /// functions' directories as the kernel's tree allows; ELOOP through a link, as
    /// RESOLVE_NO_SYMLINKS answers. A link as the last component is returned itself.
    func locate(_ address: PCIAddress, _ path: String) throws(Errno) -> (PCIAddress, String) {
        var here = address
        var parts = path.split(separator: "/").map(String.init)[...]
        while let first = parts.first {
            guard let device = devices[here] else { throw .ENOENT }
            if isLink(device, first) {
                if parts.count == 1 { break }
                throw .ELOOP
            }
            guard let child = PCIAddress(first), devices[child]?.parent == here else { break }
            here = child
            parts = parts.dropFirst()
        }
        return (here, parts.joined(separator: "/"))
    }

    func entryKind(_ address: PCIAddress, _ path: String) throws(Errno) -> EntryKind? {
        let (owner, rest) = try locate(address, path)
        guard let device = devices[owner] else { return nil }
        if rest.isEmpty { return .directory }
        if !rest.contains("/") && isLink(device, rest) { return .symlink }
        if isDirectory(device, rest) { return .directory }
        if fixedNames(device).contains(rest) || device.attributes[rest] != nil {
            return .file(readable: !isWriteOnly(device, rest))
        }
        return nil
    }

    func readBeneath(_ address: PCIAddress, _ path: String) throws(Errno) -> String {
        let (owner, rest) = try locate(address, path)
        guard let device = devices[owner] else { throw .ENOENT }
        if !rest.contains("/") && isLink(device, rest) { throw .ELOOP }
        // kernfs refuses to open an attribute without a show() for reading.
        if isWriteOnly(device, rest) { throw .EACCES }
        return try readAttribute(owner, rest)
    }

    mutating func writeBeneath(_ address: PCIAddress, _ path: String, _ value: String) throws(Errno) {
        let (owner, rest) = try locate(address, path)
        guard let device = devices[owner] else { throw .ENOENT }
        if !rest.contains("/") && isLink(device, rest) { throw .ELOOP }
        attributeWrites.append("\(owner) \(rest)=\(firstLine(value))")
        // What `remove`, `rescan` and `reset` would do is not modelled: the agent never
        // writes them, and the log above shows whether it tried.
        if isWriteOnly(device, rest) && device.attributes[rest] == nil { return }
        try writeAttribute(owner, rest, value)
    }

    func listBeneath(_ address: PCIAddress, _ path: String) throws(Errno) -> [String] {
        let (owner, rest) = try locate(address, path)
        guard let device = devices[owner] else { throw .ENOENT }
        if !rest.contains("/") && isLink(device, rest) { throw .ELOOP }
        return try listDevice(owner, rest)
    }
}
