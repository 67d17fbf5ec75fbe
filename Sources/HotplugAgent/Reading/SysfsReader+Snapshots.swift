import HostInterface
import Policy

/// Snapshots: the devices, drivers, groups and group nodes the planner plans over.
extension SysfsReader {
    /// Registered PCI drivers (`/sys/bus/pci/drivers/*`), kept until they change.
    package func drivers() throws(AgentError) -> Set<String> {
        try registeredDrivers().registered
    }

    /// The IOMMU group of a device: known, or its `iommu_group` link alone (its reconcile
    /// reads the rest). What is known may be of a device that left since (its reconcile
    /// reads it afresh); it serves to order work by group, never to decide (not even which
    /// kept group lists an event makes stale).
    package func group(of address: PCIAddress) throws(AgentError) -> Int? {
        if let identity = identities.entry(address) { return identity.iommuGroup }
        return try groupLink(of: address)
    }

    /// The group the device's `iommu_group` link names now.
    package func groupLink(of address: PCIAddress) throws(AgentError) -> Int? {
        try linkName(address, "iommu_group").flatMap(groupNumber)
    }

    /// The addresses in an IOMMU group (kept, see `GroupCache`); empty when the group does
    /// not exist.
    package func groupMembers(_ group: Int) -> [PCIAddress] {
        groups.members(of: group) {
            ((try? io.list(paths.iommuGroupDevices(group))) ?? []).compactMap { PCIAddress($0) }.sorted()
        }
    }

    package func vfioNode(_ group: Int) throws(AgentError) -> NodeState? {
        do {
            return try io.nodeState(paths.vfioNode(group))
        } catch {
            throw .io(error)
        }
    }

    /// `view` with `address` as it is there, and its IOMMU group peers and the group's
    /// node looked at again: the view the last reconcile settled on, for one only the
    /// events of its own steps asked for (`OwnEvents`). Peers may have moved since (their
    /// own events, or others'), and udev may have set the node's owner and mode after the
    /// agent did.
    package func refreshingGroup(of address: PCIAddress, in view: HostView) throws(AgentError) -> HostView {
        guard let device = view.devices[address] else { return view }
        let groups = Set(device.iommuGroup.map { [$0] } ?? [])
        let devices = [device] + groups.flatMap { peers(in: $0, besides: [address]) }
        var refreshed = try snapshot(devices, groups: groups, known: view.vfioNodes)
        refreshed.keepReadings(of: view)
        return refreshed
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
            for peer in peers(in: group, besides: Set(devices.keys)) { devices[peer.address] = peer }
        }
        return try snapshot(Array(devices.values), groups: groups)
    }

    /// The members of `group` as they are now, but those `besides`; those that vanish or
    /// cannot be read meanwhile are left out.
    private func peers(in group: Int, besides known: Set<PCIAddress>) -> [PCIDevice] {
        groupMembers(group).filter { !known.contains($0) }.compactMap { try? self.device($0) }
    }

    /// Every device of the host. Devices that vanish while being read are left out, and so
    /// are those that cannot be read (`unreadable`, with why).
    package func fullView() throws(AgentError) -> HostView {
        let (devices, unreadable) = readDevices(try addresses())
        var view = try snapshot(devices, groups: Set(devices.compactMap(\.iommuGroup)))
        view.unreadable = unreadable
        return view
    }

    /// These devices as they are now: those that vanish while being read are left out,
    /// those that cannot be read are named with why.
    private func readDevices(
        _ addresses: some Sequence<PCIAddress>
    ) -> (devices: [PCIDevice], unreadable: [PCIAddress: String]) {
        var devices: [PCIDevice] = []
        var unreadable: [PCIAddress: String] = [:]
        for address in addresses {
            do {
                devices.append(try self.device(address))
            } catch where error.isGone {
                continue
            } catch {
                unreadable[address] = "\(error)"
            }
        }
        return (devices, unreadable)
    }

    /// A view of these devices, with the registered drivers, the kernel's VFIO drivers and
    /// the nodes of `groups`; those of other groups as `known` has them. A group's node
    /// exists only while a member is on a VFIO driver (the kernel makes it when the first
    /// registers and drops it when the last goes), so only those groups' are looked at.
    private func snapshot(
        _ devices: [PCIDevice], groups: Set<Int>, known: [Int: NodeState] = [:]
    ) throws(AgentError) -> HostView {
        let drivers = try registeredDrivers()
        var nodes = known.filter { !groups.contains($0.key) }
        let held = Set(devices.compactMap { drivers.vfio.contains($0.driver) ? $0.iommuGroup : nil })
        for group in groups.intersection(held) { nodes[group] = try vfioNode(group) }
        var view = HostView(devices: devices, drivers: drivers.registered, vfioNodes: nodes)
        view.vfio = drivers.vfio
        return view
    }
}

extension SysfsReader {
    /// A view a reconcile's verified steps left (`HostView.after`), with what only the
    /// kernel can tell read for a device on a VFIO driver: its `vfio-dev/` entries, which
    /// the driver's bind makes, read under its known inode as `device` reads it. Nil when
    /// the directory is not the one its identity was read under (another device took the
    /// address) or its identity is not known: then the device is read afresh.
    package func confirming(_ view: HostView, _ address: PCIAddress) throws(AgentError) -> HostView? {
        guard var device = view.devices[address] else { return nil }
        guard view.isVFIO(device.driver) else { return view }
        guard let known = identities.entry(address) else { return nil }
        let reading: DirectoryReading
        do {
            reading = try io.readDirectory(
                paths.device(address), DirectoryRequest(listings: ["vfio-dev"], ofKnownDevice: true))
        } catch where error.meansGone {
            throw .gone(address)
        } catch {
            throw .io(error)
        }
        guard known.isOf(reading) else { return nil }
        device.vfioDeviceNames = (reading.listings["vfio-dev"] ?? []).filter { $0.hasPrefix("vfio") }.sorted()
        return view.replacing(device)
    }
}

extension SysfsReader {
    /// A full view again from `previous` (one `fullView` was, enriched): the devices in
    /// `changed` and every member of their IOMMU groups read afresh (added, gone or
    /// unreadable as they are now), and their groups' nodes; every other device as it was.
    /// Also read again whatever `previous` could not read whole (a device that could not
    /// be read, a VF whose PF's IDs could not), and, when a device came or a VGA device
    /// changed, every VGA device (the default VGA device, and with it every `boot_vga`,
    /// can change then). Returns the view and the addresses read again, whose needs the
    /// caller reads.
    package func fullView(
        updating previous: HostView, changed: Set<PCIAddress>
    ) throws(AgentError) -> (view: HostView, read: Set<PCIAddress>) {
        var groups = Set<Int>()
        var read = changed.union(previous.unreadable.keys)
        read.formUnion(previous.devices.values.filter { $0.physfn != nil && $0.pfID == nil }.map(\.address))
        if changed.contains(where: { previous.devices[$0]?.isVGA ?? true }) {
            read.formUnion(previous.devices.values.filter(\.isVGA).map(\.address))
        }
        for address in read {
            if let group = previous.devices[address]?.iommuGroup { groups.insert(group) }
            if let group = try? self.group(of: address) { groups.insert(group) }
        }
        for group in groups {
            read.formUnion(groupMembers(group))
            read.formUnion(previous.members(of: group).map(\.address))
        }
        let (fresh, failed) = readDevices(read)
        var devices = previous.devices.filter { !read.contains($0.key) }
        for device in fresh { devices[device.address] = device }
        groups.formUnion(fresh.compactMap(\.iommuGroup))
        var view = try snapshot(Array(devices.values), groups: groups, known: previous.vfioNodes)
        view.keepReadings(of: previous)
        view.unreadable = previous.unreadable.filter { !read.contains($0.key) }.merging(failed) { $1 }
        return (view, read)
    }
}
