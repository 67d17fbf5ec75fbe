import HostInterface
import Policy

/// Snapshots: the devices, drivers, groups and group nodes the planner plans over.
extension SysfsReader {
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
        return snapshot(Array(devices.values), drivers: try drivers(), vfioNodes: nodes)
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
        return snapshot(devices, drivers: try drivers(), vfioNodes: nodes)
    }

    /// A view of these devices, with the kernel's VFIO drivers for these registered drivers.
    private func snapshot(_ devices: [PCIDevice], drivers: Set<String>, vfioNodes: [Int: NodeState]) -> HostView {
        var view = HostView(devices: devices, drivers: drivers, vfioNodes: vfioNodes)
        view.vfio = vfioDrivers(registered: drivers)
        return view
    }
}
