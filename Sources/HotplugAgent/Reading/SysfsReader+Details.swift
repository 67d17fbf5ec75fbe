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
        var enriched = view
        var changed = false
        var iommu = view.iommu
        // /dev/iommu is read at most once per view, also where the kernel has none.
        var iommuRead = view.iommuLooked || iommu != nil
        var variants = view.variants
        if wanted.variants {
            variants = variantCache.get { vfioVariants() }
            changed = changed || variants != view.variants
        }
        for (address, needs) in wanted.devices {
            guard var device = view.devices[address] else { continue }
            changed = true
            if needs.origin { device.origin = origins?.load(address, of: device.id) }
            if needs.config { device.config = config(address) }
            if needs.upstreamConfig { device.upstream = upstream(of: address) }
            // A PF the agent changed: its SR-IOV state, to put it back when no policy wants it.
            if needs.sriov || device.origin?.sriov != nil { device.sriov = sriov(address) }
            if needs.inUse { device.inUse = inUse(address, as: device) }
            // Holders, where a step would pull the device or its VFs from a VM: it leaves its
            // VFIO driver, or its VF count changes (to the policy's or back to the origin's).
            let target = needs.holdersUnlessVFCount ?? device.origin?.sriov?.numVFs
            let countChanges =
                target.map { count in device.sriov.map { $0.numVFs != 0 && $0.numVFs != count } ?? false }
                ?? false
            if needs.holders || countChanges {
                (device.heldBy, device.holderPIDs) = holders(address, group: device.iommuGroup)
            }
            if countChanges {
                device.vfsInUse = HostUse(io: io, paths: paths, vfio: vfioDrivers()).vfsInUse(of: address)
            }
            for write in needs.attributes { device.attributes[write.path] = attribute(address, write) }
            if needs.deviceNode {
                let nodes = NodeHolders(io: io, paths: paths, vfio: vfioDrivers())
                device.deviceNode = nodes.deviceNode(of: device)
                if !iommuRead {
                    iommu = try? io.nodeAccess(paths.under("/dev/iommu"))
                    iommuRead = true
                }
            }
            enriched.replace(device)
        }
        guard changed else { return view }
        enriched.iommu = iommu
        enriched.iommuLooked = iommuRead
        enriched.variants = variants
        return enriched
    }

    /// How the host uses a device (see `HostUse`).
    package func inUse(_ address: PCIAddress, as device: PCIDevice? = nil) -> [String] {
        HostUse(io: io, paths: paths, vfio: vfioDrivers()).inUse(address, as: device)
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
        for component in target.split(byte: UInt8(ascii: "/")).reversed() {
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

extension KernelIO {
    /// A PF's VFs, by its `virtfnN` links, in the links' order; a link that cannot be read,
    /// or names no PCI function, is one reason in `unreadable`, never a VF passed over (a
    /// link gone since the listing is none). For the looks that must know each VF: whether
    /// the host uses one, whether a VM holds one.
    func virtualFunctions(of pf: PCIAddress, paths: HostPaths) -> (vfs: [PCIAddress], unreadable: [String]) {
        let links = ((try? list(paths.device(pf))) ?? []).filter { $0.hasPrefix("virtfn") }.sorted()
        var vfs: [PCIAddress] = [], unreadable: [String] = []
        for link in links {
            do throws(IOFailure) {
                let target = try readLink(paths.attribute(pf, link))
                guard let vf = lastComponent(target).flatMap(PCIAddress.init) else {
                    unreadable.append("\(link) leads to \(escapingControlCharacters(target)), not a PCI function")
                    continue
                }
                vfs.append(vf)
            } catch where error.errno == .ENOENT {
                continue
            } catch {
                unreadable.append("\(error)")
            }
        }
        return (vfs, unreadable)
    }
}
