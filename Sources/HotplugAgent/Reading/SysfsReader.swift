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
    /// IOMMU groups' members, until a device comes or goes.
    package let groups = GroupCache()
    /// The registered drivers and the kernel's VFIO drivers, until they change.
    package let driverCache = DriverCache()

    package init(io: any KernelIO, paths: HostPaths, origins: OriginStore? = nil) {
        self.io = io
        self.paths = paths
        self.origins = origins
    }

    /// Forgets what is kept between reconciles (identities, groups, drivers): events were lost.
    package func forgetAll() {
        identities.forgetAll()
        groups.forgetAll()
        driverCache.forget()
    }

    /// Every PCI address sysfs lists, in address order; names that are not addresses are skipped.
    package func addresses() throws(AgentError) -> [PCIAddress] {
        do {
            return try io.list(paths.pciDevices).compactMap { PCIAddress($0) }.sorted()
        } catch {
            throw .io(error)
        }
    }

    /// One device as sysfs shows it now, in one look at its directory (`readDirectory`);
    /// `.gone` when it is not there (any more). Its identity comes from `identities` (kept
    /// where inodes tell devices apart: `DirectoryReading.tellsDeviceApart`) while its
    /// directory is the one it was read from, else from its `uevent` file and
    /// links; the driver link, `driver_override` and, while on a VFIO driver, `vfio-dev/`
    /// always from sysfs.
    package func device(_ address: PCIAddress) throws(AgentError) -> PCIDevice {
        let directory = paths.device(address)
        let known = identities.entry(address)
        var request = DirectoryRequest(
            files: ["driver_override"], links: ["driver"], listingsOnVFIO: ["vfio-dev"], vfio: vfioDrivers())
        if let known {
            // Its entries by path and the inode after them: a match below says they were its.
            request.ofKnownDevice = true
            // The kernel shows boot_vga on VGA-class functions only; it can change when the
            // default VGA device goes, so it is never cached.
            if PCIDevice.isVGA(classCode: known.classCode) { request.files.append("boot_vga") }
        } else {
            request.files.append("uevent")
            request.links += ["iommu_group", "physfn"]
        }
        let reading: DirectoryReading
        do {
            reading = try io.readDirectory(directory, request)
        } catch where error.meansGone {
            identities.forget(address)
            throw .gone(address)
        } catch {
            throw .io(error)
        }
        var vfPending = false
        let identity: DeviceIdentity
        if let known {
            // Known only while its directory is the one it was read from: another device
            // that took the address is read afresh. Compared with the identity the reading
            // was asked under, never with what the cache holds now: another reader may have
            // put the new device's there since these entries were read.
            guard known.isOf(reading) else {
                identities.forget(address)
                return try device(address)
            }
            identity = known
        } else {
            (identity, vfPending) = try readIdentity(address, reading, in: directory)
            // Kept only where its directory tells it from the next device there (sysfs).
            if reading.tellsDeviceApart && !vfPending && (identity.physfn == nil || identity.pfID != nil) {
                identities.store(identity, for: address)
            }
        }
        var device = PCIDevice(
            address: address, id: identity.id, subsystemID: identity.subsystemID, classCode: identity.classCode,
            driver: try driverName(reading.links["driver"], at: directory + "/driver"),
            iommuGroup: identity.iommuGroup, physfn: identity.physfn, pfID: identity.pfID)
        device.vfPending = vfPending
        device.vfioDeviceNames = (reading.listings["vfio-dev"] ?? []).filter { $0.hasPrefix("vfio") }.sorted()
        if let override = reading.files["driver_override"] {
            let value = firstLine(override)
            device.driverOverride = value == "(null)" || value.isEmpty ? nil : value
        }
        if PCIDevice.isVGA(classCode: identity.classCode) {
            // Read the first time once the class says it is there (three system calls
            // saved on every other device).
            let bootVGA = known == nil ? try optional(address, "boot_vga") : reading.files["boot_vga"]
            device.bootVGA = bootVGA.map { firstLine($0) == "1" } ?? false
        }
        return device
    }

    /// The driver bound to the device now (its `driver` link alone); `.gone` when it left.
    package func driver(of address: PCIAddress) throws(AgentError) -> String? {
        try driverName(try linkName(address, "driver"), at: paths.attribute(address, "driver"))
    }

    /// The last component of a `driver` link, which the agent writes into paths
    /// (`drivers/<name>/unbind`) and records: a driver's name, never `..` or anything else.
    private func driverName(_ link: String?, at path: String) throws(AgentError) -> String? {
        guard let link, let name = lastComponent(link) else { return nil }
        guard DriverKind.isValidName(name) else {
            throw .malformed(path: path, value: name, expected: "a driver's name")
        }
        return name
    }

    /// IDs, class and subsystem IDs (see `DeviceIDs`), group and PF from the links;
    /// `vfPending` when the device reads as a VF whose `physfn` link is not there yet.
    private func readIdentity(
        _ address: PCIAddress, _ reading: DirectoryReading, in directory: String
    ) throws(AgentError) -> (DeviceIdentity, vfPending: Bool) {
        let ids = try ids(address, reading, in: directory)
        var identity = DeviceIdentity(
            fileSystem: reading.fileSystem, inode: reading.inode, id: ids.id, subsystemID: ids.subsystemID,
            classCode: ids.classCode)
        if let group = reading.links["iommu_group"].flatMap(lastComponent) {
            guard let number = groupNumber(group) else {
                throw .malformed(path: directory + "/iommu_group", value: group, expected: "a group number")
            }
            identity.iommuGroup = number
        }
        var vfPending = false
        if let pf = reading.links["physfn"].flatMap(lastComponent) {
            guard let pfAddress = PCIAddress(pf) else {
                throw .malformed(path: directory + "/physfn", value: pf, expected: "a PCI address")
            }
            identity.physfn = pfAddress
            // The PF's IDs; a PF that left with its VFs leaves them unmatched by pf-ids.
            identity.pfID = identities.entry(pfAddress)?.id ?? pfID(pfAddress)
        } else if reading.links["driver"] == nil, !PCIDevice.isBridge(classCode: ids.classCode),
            let head = try? io.readBytes(directory + "/config", offset: 0, count: 4), head.count == 4
        {
            // A VF reads all ones where its IDs would be; without physfn it is still being made.
            // Not one on a driver: the kernel lets a new device match drivers only after its
            // links are made (pci_bus_add_device). Nor a bridge: a VF has a type 0 header.
            vfPending = ConfigSpace(head).readsAsVF
        }
        return (identity, vfPending)
    }

    /// An `iommu_group` link's last component as a group number: plain digits only.
    func groupNumber(_ name: String) -> Int? {
        guard name.isASCIIDigits, name.utf8.count <= 9 else { return nil }
        return name.utf8.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }

    /// A PF's vendor:device, as its IDs are read; nil when it cannot be read.
    private func pfID(_ pf: PCIAddress) -> PCIID? {
        let directory = paths.device(pf)
        guard let reading = try? io.readDirectory(directory, DirectoryRequest(files: ["uevent"])) else { return nil }
        return (try? ids(pf, reading, in: directory))?.id
    }

    /// An attribute of the device; nil when the file is missing while the device is there.
    package func optional(_ address: PCIAddress, _ name: String) throws(AgentError) -> String? {
        let directory = paths.device(address)
        do {
            return try io.read(directory + "/" + name)
        } catch where error.errno == .ENOENT && io.exists(directory) {
            return nil
        } catch where error.meansGone {
            throw .gone(address)
        } catch {
            throw .io(error)
        }
    }

    /// The last component of a link below the device (`driver` → `vfio-pci`), nil when absent.
    func linkName(_ address: PCIAddress, _ name: String) throws(AgentError) -> String? {
        let directory = paths.device(address)
        do {
            return lastComponent(try io.readLink(directory + "/" + name))
        } catch where error.errno == .ENOENT {
            if io.exists(directory) { return nil }
            throw .gone(address)
        } catch where error.meansGone {
            throw .gone(address)
        } catch {
            throw .io(error)
        }
    }
}
