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
            if !vfPending && (identity.physfn == nil || identity.pfID != nil) { identities.store(identity, for: address) }
        }
        var device = PCIDevice(address: address, id: identity.id, subsystemID: identity.subsystemID, classCode: identity.classCode,
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
            if identity.classCode >> 8 == 0x0300, let bootVGA = try optional(address, "boot_vga", in: directory, seen: true) {
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
    private func readIdentity(_ address: PCIAddress, inode: UInt64, in directory: String) throws(AgentError) -> (DeviceIdentity, vfPending: Bool) {
        let vendor = try hexAttribute(address, "vendor", bits: 16, required: true, in: directory)!
        let deviceID = try hexAttribute(address, "device", bits: 16, required: true, in: directory)!
        let classCode = try hexAttribute(address, "class", bits: 24, required: true, in: directory)!
        let subVendor = try hexAttribute(address, "subsystem_vendor", bits: 16, required: false, in: directory, seen: true)
        let subDevice = try hexAttribute(address, "subsystem_device", bits: 16, required: false, in: directory, seen: true)
        var identity = DeviceIdentity(inode: inode, id: PCIID(vendor: UInt16(vendor), device: UInt16(deviceID)), classCode: UInt32(classCode))
        if let subVendor, let subDevice {
            identity.subsystemID = PCIID(vendor: UInt16(subVendor), device: UInt16(subDevice))
        }
        if let group = try linkName(address, "iommu_group", in: directory, seen: true) {
            guard let number = Int(group) else {
                throw .malformed(path: paths.attribute(address, "iommu_group"), value: group, expected: "a group number")
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
               let pfDevice = try? hexAttribute(pfAddress, "device", bits: 16, required: true) {
                identity.pfID = PCIID(vendor: UInt16(pfVendor), device: UInt16(pfDevice))
            }
        } else if let head = try? io.readBytes(directory + "/config", offset: 0, count: 4), head.count == 4 {
            // A VF reads all ones where its IDs would be; without physfn it is still being made.
            vfPending = ConfigSpace(head).readsAsVF
        }
        return (identity, vfPending)
    }

    /// Reads, for each device of the view, what the planner needs for its policy: config
    /// space (its own and its upstream ports'), SR-IOV state, the policy's attributes,
    /// whether the host uses it, and where the agent moved it from.
    /// What cannot be read stays unset, and the planner refuses what depends on it.
    package func enrich(_ view: HostView, for planner: Planner) -> HostView {
        var devices = Array(view.devices.values)
        var changed = false
        var iommu = view.iommu
        // /dev/iommu is read at most once per view, also where the kernel has none.
        var iommuRead = iommu != nil
        var variants = view.variants
        if planner.policies.policies.contains(where: { $0.driver == .vfio }) {
            variants = variantCache.get { vfioVariants() }
            changed = changed || variants != view.variants
        }
        for index in devices.indices {
            let needs = planner.needs(for: devices[index], in: view)
            guard needs != ReadNeeds() else { continue }
            changed = true
            let address = devices[index].address
            if needs.origin { devices[index].origin = origins?.load(address) }
            if needs.config { devices[index].config = config(address) }
            if needs.upstreamConfig { devices[index].upstream = upstream(of: address) }
            // A PF the agent changed: its SR-IOV state, to put it back when no policy wants it.
            if needs.sriov || devices[index].origin?.sriov != nil { devices[index].sriov = sriov(address) }
            if needs.inUse { devices[index].inUse = inUse(address) }
            // Holders, where a step would pull the device or its VFs from a VM: it leaves its
            // VFIO driver, or its VF count changes (to the policy's or back to the origin's).
            let target = needs.holdersUnlessVFCount ?? devices[index].origin?.sriov?.numVFs
            let countChanges = target.map { count in devices[index].sriov.map { $0.numVFs != 0 && $0.numVFs != count } ?? false } ?? false
            if needs.holders || countChanges {
                (devices[index].heldBy, devices[index].holderPIDs) = holders(address, group: devices[index].iommuGroup)
            }
            if countChanges { devices[index].vfsInUse = HostUse(io: io, paths: paths).vfsInUse(of: address) }
            for write in needs.attributes { devices[index].attributes[write.path] = attribute(address, write) }
            if needs.deviceNode {
                devices[index].deviceNode = NodeHolders(io: io, paths: paths).deviceNode(of: address)
                if !iommuRead {
                    iommu = try? io.nodeAccess(paths.under("/dev/iommu"))
                    iommuRead = true
                }
            }
        }
        guard changed else { return view }
        var enriched = HostView(devices: devices, drivers: view.drivers, vfioNodes: view.vfioNodes, iommu: iommu)
        enriched.variants = variants
        enriched.vfioDrivers = view.vfioDrivers
        return enriched
    }

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
            if let driver = names.first(where: { $0.hasPrefix("pci:") }) { drivers[module] = String(driver.dropFirst(4)) }
        }
        return VFIOVariants(aliases: aliases, driversOfModules: drivers)
    }

    /// How the host uses a device (see `HostUse`).
    package func inUse(_ address: PCIAddress) -> [String] { HostUse(io: io, paths: paths).inUse(address) }

    /// The device's network interfaces and block devices, as `record` keeps them.
    package func hostUse(_ address: PCIAddress) -> (interfaces: [HostDescription.Interface], disks: [HostDescription.Disk]) {
        HostUse(io: io, paths: paths).hostUse(address)
    }

    package func config(_ address: PCIAddress) -> ConfigSpace? {
        guard let bytes = try? io.readBytes(paths.attribute(address, "config"), offset: 0, count: 4096), bytes.count >= 64
        else { return nil }
        return ConfigSpace(bytes)
    }

    /// The bridges between the device and its root bus, nearest first, from the real path
    /// of its sysfs directory (`/sys/devices/pci0000:00/0000:00:01.1/0000:10:00.0/…`).
    package func upstream(of address: PCIAddress) -> [UpstreamPort]? {
        guard let target = try? io.readLink(paths.device(address)) else { return nil }
        var ports: [UpstreamPort] = []
        for component in target.split(separator: "/").reversed() {
            guard let port = PCIAddress(component), port != address else { continue }
            guard let config = config(port) else { return nil }
            ports.append(UpstreamPort(address: port, config: config))
        }
        return ports
    }

    package func sriov(_ address: PCIAddress) -> SRIOVState? {
        func number(_ name: String) -> Int? { (try? optional(address, name)).flatMap { $0 }.flatMap { Int(firstLine($0)) } }
        guard let total = number("sriov_totalvfs"), let count = number("sriov_numvfs") else { return nil }
        return SRIOVState(totalVFs: total, numVFs: count, autoprobe: number("sriov_drivers_autoprobe") != 0)
    }

    /// What one `sysfs` entry finds below the device (see `AttributeWalker`).
    package func attribute(_ address: PCIAddress, _ write: AttributeWrite) -> [AttributeReading] {
        AttributeWalker(io: io, directory: paths.device(address)).readings(for: write)
    }

    /// Registered PCI drivers (`/sys/bus/pci/drivers/*`).
    package func drivers() throws(AgentError) -> Set<String> {
        do {
            return Set(try io.list(paths.pciDrivers))
        } catch {
            throw .io(error)
        }
    }

    /// The IOMMU group of a device, known or from its `iommu_group` link; nil without one.
    package func group(of address: PCIAddress) throws(AgentError) -> Int? {
        if let inode = try? io.inode(paths.device(address)), let identity = identities.lookup(address, inode: inode) {
            return identity.iommuGroup
        }
        return try linkName(address, "iommu_group").flatMap { Int($0) }
    }

    /// The addresses in an IOMMU group; empty when the group does not exist.
    package func groupMembers(_ group: Int) -> [PCIAddress] {
        ((try? io.list(paths.iommuGroupDevices(group))) ?? []).compactMap { PCIAddress($0) }.sorted()
    }

    package func vfioNode(_ group: Int) throws(AgentError) -> NodeState? {
        do {
            return try io.nodeState(paths.vfioNode(group))
        } catch {
            throw .io(error)
        }
    }

    /// The view the planner needs for `addresses`: them, their IOMMU group peers, the
    /// drivers and their groups' nodes. Peers that vanish meanwhile are left out.
    package func view(around addresses: [PCIAddress]) throws(AgentError) -> HostView {
        var devices: [PCIAddress: PCIDevice] = [:]
        var groups = Set<Int>()
        for address in addresses {
            let device = try self.device(address)
            devices[address] = device
            if let group = device.iommuGroup { groups.insert(group) }
        }
        for group in groups {
            for peer in groupMembers(group) where devices[peer] == nil {
                if let device = try? self.device(peer) { devices[peer] = device }
            }
        }
        var nodes: [Int: NodeState] = [:]
        for group in groups { nodes[group] = try vfioNode(group) }
        return HostView(devices: Array(devices.values), drivers: try drivers(), vfioNodes: nodes)
    }

    /// Every device of the host. Devices that vanish while being read are left out.
    package func fullView() throws(AgentError) -> HostView {
        var devices: [PCIDevice] = []
        var groups = Set<Int>()
        for address in try addresses() {
            do {
                let device = try self.device(address)
                devices.append(device)
                if let group = device.iommuGroup { groups.insert(group) }
            } catch where error.isGone {
                continue
            }
        }
        var nodes: [Int: NodeState] = [:]
        for group in groups { nodes[group] = try vfioNode(group) }
        var view = HostView(devices: devices, drivers: try drivers(), vfioNodes: nodes)
        view.vfioDrivers = vfioDriverNames()
        return view
    }

    /// The PCI drivers of the modules built on vfio-pci-core (`/sys/module/vfio_pci_core/
    /// holders/`: vfio_pci, mlx5_vfio_pci, …), as the kernel lists them once loaded.
    package func vfioDriverNames() -> Set<String> {
        let holders = (try? io.list(paths.under("/sys/module/vfio_pci_core/holders"))) ?? []
        return Set(holders.flatMap { module in
            ((try? io.list(paths.under("/sys/module/\(module)/drivers"))) ?? []).filter { $0.hasPrefix("pci:") }.map { String($0.dropFirst(4)) }
        })
    }

    // MARK: Attributes

    package func optional(_ address: PCIAddress, _ name: String) throws(AgentError) -> String? {
        try optional(address, name, in: paths.device(address))
    }

    /// An attribute of the device whose directory is `directory` (built once per snapshot).
    /// A missing file means the device left, unless its directory is still there or was
    /// just seen (`seen`): a device that leaves right after is noticed by the next write.
    package func optional(_ address: PCIAddress, _ name: String, in directory: String, seen: Bool = false) throws(AgentError) -> String? {
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
    private func hexAttribute(_ address: PCIAddress, _ name: String, bits: Int, required: Bool,
                              in directory: String? = nil, seen: Bool = false) throws(AgentError) -> UInt32? {
        guard let text = try optional(address, name, in: directory ?? paths.device(address), seen: seen) else {
            if required { throw .gone(address) }
            return nil
        }
        let line = firstLine(text)
        let digits = line.hasPrefix("0x") ? line.dropFirst(2) : Substring(line)
        guard !digits.isEmpty, digits.count <= bits / 4, let value = UInt32(digits, radix: 16) else {
            throw .malformed(path: (directory ?? paths.device(address)) + "/" + name, value: line, expected: "a \(bits)-bit hex number")
        }
        return value
    }

    /// The last component of a link below the device (`driver` → `vfio-pci`), nil when absent.
    private func linkName(_ address: PCIAddress, _ name: String, in directory: String? = nil, seen: Bool = false) throws(AgentError) -> String? {
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
