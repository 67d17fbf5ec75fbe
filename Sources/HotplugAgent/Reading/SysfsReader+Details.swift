import HostInterface
import Policy

/// What the planner asks for beyond a snapshot (`ReadNeeds`): config space, SR-IOV state,
/// attributes, host use, holders and origins.
extension SysfsReader {
    /// Reads, for each device of the view, what the planner said it needs (`Planner.needs`):
    /// config space (its own and its upstream ports'), SR-IOV state, the policy's
    /// attributes, whether the host uses it, and where the agent moved it from.
    /// What cannot be read stays unset, and the planner refuses what depends on it.
    package func read(_ wanted: ViewNeeds, into view: HostView) -> HostView {
        var devices = Array(view.devices.values)
        var changed = false
        var iommu = view.iommu
        // /dev/iommu is read at most once per view, also where the kernel has none.
        var iommuRead = iommu != nil
        var variants = view.variants
        if wanted.variants {
            variants = variantCache.get { vfioVariants() }
            changed = changed || variants != view.variants
        }
        for index in devices.indices {
            guard let needs = wanted.devices[devices[index].address] else { continue }
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
            let countChanges =
                target.map { count in devices[index].sriov.map { $0.numVFs != 0 && $0.numVFs != count } ?? false }
                ?? false
            if needs.holders || countChanges {
                (devices[index].heldBy, devices[index].holderPIDs) = holders(address, group: devices[index].iommuGroup)
            }
            if countChanges {
                devices[index].vfsInUse = HostUse(io: io, paths: paths, vfio: vfioDrivers()).vfsInUse(of: address)
            }
            for write in needs.attributes { devices[index].attributes[write.path] = attribute(address, write) }
            if needs.deviceNode {
                let nodes = NodeHolders(io: io, paths: paths, vfio: vfioDrivers())
                devices[index].deviceNode = nodes.deviceNode(of: devices[index])
                if !iommuRead {
                    iommu = try? io.nodeAccess(paths.under("/dev/iommu"))
                    iommuRead = true
                }
            }
        }
        guard changed else { return view }
        var enriched = HostView(devices: devices, drivers: view.drivers, vfioNodes: view.vfioNodes, iommu: iommu)
        enriched.variants = variants
        enriched.vfio = view.vfio
        enriched.unreadable = view.unreadable
        return enriched
    }

    /// How the host uses a device (see `HostUse`).
    package func inUse(_ address: PCIAddress) -> [String] {
        HostUse(io: io, paths: paths, vfio: vfioDrivers()).inUse(address)
    }

    /// The device's network interfaces and block devices, as `record` keeps them.
    package func hostUse(
        _ address: PCIAddress
    ) -> (interfaces: [HostDescription.Interface], disks: [HostDescription.Disk]) {
        HostUse(io: io, paths: paths, vfio: vfioDrivers()).hostUse(address)
    }

    package func config(_ address: PCIAddress) -> ConfigSpace? {
        guard let bytes = try? io.readBytes(paths.attribute(address, "config"), offset: 0, count: 4096),
            bytes.count >= 64
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
        func number(_ name: String) -> Int? {
            (try? optional(address, name)).flatMap { $0 }.flatMap { Int(firstLine($0)) }
        }
        guard let total = number("sriov_totalvfs"), let count = number("sriov_numvfs") else { return nil }
        return SRIOVState(totalVFs: total, numVFs: count, autoprobe: number("sriov_drivers_autoprobe") != 0)
    }

    /// What one `sysfs` entry finds below the device (see `AttributeWalker`).
    package func attribute(_ address: PCIAddress, _ write: AttributeWrite) -> [AttributeReading] {
        AttributeWalker(io: io, directory: paths.device(address)).readings(for: write)
    }
}
