import HostInterface
import Glibc
import Policy

/// Reads devices, drivers, groups and vfio nodes through the lowest layer into the values
/// the planner takes. Each attribute is read once per snapshot.
package struct SysfsReader: Sendable {
    package let io: any KernelIO
    package let paths: HostPaths
    /// Where devices the agent moved came from; nil when the agent keeps no state.
    package var origins: OriginStore? = nil
    /// Identities already read, shared by every copy of this reader.
    package var identities = IdentityCache()
    /// The kernel's VFIO variant drivers, read once (they change with the kernel).
    package let variantCache = VariantCache()
    /// The kernel's VFIO drivers, read again when the registered drivers change.
    package let vfioDriverCache = VFIODriverCache()

    package init(io: any KernelIO, paths: HostPaths, origins: OriginStore? = nil) {
        self.io = io
        self.paths = paths
        self.origins = origins
    }

    /// Every PCI address sysfs lists, in address order; names that are not addresses are skipped.
    package func addresses() throws(AgentError) -> [PCIAddress] {
        do {
            return try io.list(paths.pciDevices).compactMap { PCIAddress($0) }.sorted()
        } catch {
            throw .io(error)
        }
    }

    /// One device as sysfs shows it now; `.gone` when it is not there (any more). Its
    /// identity comes from `identities` while its directory is the same; the driver link
    /// and override always from sysfs.
    package func device(_ address: PCIAddress) throws(AgentError) -> PCIDevice {
        let directory = paths.device(address)
        let inode: UInt64
        do {
            inode = try io.inode(directory)
        } catch where error.meansGone {
            identities.forget(address)
            throw .gone(address)
        } catch {
            throw .io(error)
        }
        var vfPending = false
        let identity: DeviceIdentity
        if let cached = identities.lookup(address, inode: inode) {
            identity = cached
        } else {
            (identity, vfPending) = try readIdentity(address, inode: inode, in: directory)
            if !vfPending && (identity.physfn == nil || identity.pfID != nil) {
                identities.store(identity, for: address)
            }
        }
        var device = PCIDevice(
            address: address, id: identity.id, subsystemID: identity.subsystemID, classCode: identity.classCode,
            iommuGroup: identity.iommuGroup, physfn: identity.physfn, pfID: identity.pfID)
        device.vfPending = vfPending
        do {
            if identity.subsystemID == nil {
                device.shownModalias = try optional(address, "modalias", in: directory, seen: true).map(firstLine)
            }
            device.driver = try linkName(address, "driver", in: directory, seen: true)
            if let override = try optional(address, "driver_override", in: directory, seen: true) {
                let value = firstLine(override)
                device.driverOverride = value == "(null)" || value.isEmpty ? nil : value
            }
            // The kernel shows boot_vga on VGA-class functions only; it can change when the
            // default VGA device goes, so it is never cached.
            if identity.classCode >> 8 == 0x0300,
                let bootVGA = try optional(address, "boot_vga", in: directory, seen: true)
            {
                device.bootVGA = firstLine(bootVGA) == "1"
            }
        } catch .gone(let gone) {
            identities.forget(address)
            throw .gone(gone)
        }
        return device
    }

    /// The driver bound to the device now (its `driver` link alone); `.gone` when it left.
    package func driver(of address: PCIAddress) throws(AgentError) -> String? {
        try linkName(address, "driver")
    }

    /// IDs, class, group and PF, read from sysfs; `vfPending` when the device reads as a
    /// VF whose `physfn` link is not there yet.
    private func readIdentity(
        _ address: PCIAddress, inode: UInt64, in directory: String
    ) throws(AgentError) -> (DeviceIdentity, vfPending: Bool) {
        let vendor = try hexAttribute(address, "vendor", bits: 16, required: true, in: directory)!
        let deviceID = try hexAttribute(address, "device", bits: 16, required: true, in: directory)!
        let classCode = try hexAttribute(address, "class", bits: 24, required: true, in: directory)!
        let subVendor = try hexAttribute(
            address, "subsystem_vendor", bits: 16, required: false, in: directory, seen: true)
        let subDevice = try hexAttribute(
            address, "subsystem_device", bits: 16, required: false, in: directory, seen: true)
        var identity = DeviceIdentity(
            inode: inode, id: PCIID(vendor: UInt16(vendor), device: UInt16(deviceID)), classCode: UInt32(classCode))
        if let subVendor, let subDevice {
            identity.subsystemID = PCIID(vendor: UInt16(subVendor), device: UInt16(subDevice))
        }
        if let group = try linkName(address, "iommu_group", in: directory, seen: true) {
            guard let number = Int(group) else {
                throw .malformed(
                    path: paths.attribute(address, "iommu_group"), value: group, expected: "a group number")
            }
            identity.iommuGroup = number
        }
        var vfPending = false
        if let pf = try linkName(address, "physfn", in: directory, seen: true) {
            guard let pfAddress = PCIAddress(pf) else {
                throw .malformed(path: paths.attribute(address, "physfn"), value: pf, expected: "a PCI address")
            }
            identity.physfn = pfAddress
            // The PF's IDs; a PF that left with its VFs leaves them unmatched by pf-ids.
            if let pfVendor = try? hexAttribute(pfAddress, "vendor", bits: 16, required: true),
                let pfDevice = try? hexAttribute(pfAddress, "device", bits: 16, required: true)
            {
                identity.pfID = PCIID(vendor: UInt16(pfVendor), device: UInt16(pfDevice))
            }
        } else if let head = try? io.readBytes(directory + "/config", offset: 0, count: 4), head.count == 4 {
            // A VF reads all ones where its IDs would be; without physfn it is still being made.
            vfPending = ConfigSpace(head).readsAsVF
        }
        return (identity, vfPending)
    }

    package func optional(_ address: PCIAddress, _ name: String) throws(AgentError) -> String? {
        try optional(address, name, in: paths.device(address))
    }

    /// An attribute of the device whose directory is `directory` (built once per snapshot).
    /// A missing file means the device left, unless its directory is still there or was
    /// just seen (`seen`): a device that leaves right after is noticed by the next write.
    package func optional(
        _ address: PCIAddress, _ name: String, in directory: String, seen: Bool = false
    ) throws(AgentError) -> String? {
        do {
            return try io.read(directory + "/" + name)
        } catch where error.errno == .ENOENT && (seen || io.exists(directory)) {
            return nil
        } catch where error.meansGone {
            throw .gone(address)
        } catch {
            throw .io(error)
        }
    }

    /// `0x1002` → 0x1002; a required attribute that is missing means the device left.
    func hexAttribute(
        _ address: PCIAddress, _ name: String, bits: Int, required: Bool,
        in directory: String? = nil, seen: Bool = false
    ) throws(AgentError) -> UInt32? {
        guard let text = try optional(address, name, in: directory ?? paths.device(address), seen: seen) else {
            if required { throw .gone(address) }
            return nil
        }
        let line = firstLine(text)
        let digits = line.hasPrefix("0x") ? line.dropFirst(2) : Substring(line)
        guard !digits.isEmpty, digits.count <= bits / 4, let value = UInt32(digits, radix: 16) else {
            throw .malformed(
                path: (directory ?? paths.device(address)) + "/" + name, value: line,
                expected: "a \(bits)-bit hex number")
        }
        return value
    }

    /// The last component of a link below the device (`driver` → `vfio-pci`), nil when absent.
    func linkName(
        _ address: PCIAddress, _ name: String, in directory: String? = nil, seen: Bool = false
    ) throws(AgentError) -> String? {
        let directory = directory ?? paths.device(address)
        do {
            return lastComponent(try io.readLink(directory + "/" + name))
        } catch where error.errno == .ENOENT {
            if seen || io.exists(directory) { return nil }
            throw .gone(address)
        } catch where error.meansGone {
            throw .gone(address)
        } catch {
            throw .io(error)
        }
    }
}
