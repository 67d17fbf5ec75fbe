import Policy

/// Which processes hold a device's VFIO nodes open: the group node `/dev/vfio/<group>`
/// and, on kernels with iommufd device nodes, `/dev/vfio/devices/vfioN` (named by the
/// device's `vfio-dev/vfioN`). A VMM holds them for as long as the guest has the device;
/// unbinding it meanwhile blocks in the kernel until the VMM lets go, and removing a PF's
/// VFs pulls them out of the guest. Node numbers are compared with `st_rdev` of every
/// process's open descriptors.
struct NodeHolders {
    let io: any KernelIO
    let paths: HostPaths

    /// One line per holder (`/dev/vfio/12 is open by qemu-system-x86 (pid 4242)`) of the
    /// nodes of these devices; empty when nothing holds them.
    func heldBy(_ devices: [(address: PCIAddress, group: Int?)]) -> [String] {
        var nodes: [UInt64: String] = [:]
        for (address, group) in devices {
            for node in self.nodes(of: address, group: group) {
                if let number = io.deviceNumber(paths.under(node)), nodes[number] == nil { nodes[number] = node }
            }
        }
        guard !nodes.isEmpty else { return [] }
        return io.openers(of: Set(nodes.keys)).map { opener in
            "\(nodes[opener.device]!) is open by \(opener.command) (pid \(opener.pid))"
        }
    }

    /// The nodes a VMM opens the device through, as paths below the root.
    func nodes(of address: PCIAddress, group: Int?) -> [String] {
        (group.map { ["/dev/vfio/\($0)"] } ?? []) + deviceNodeNames(of: address).map { "/dev/vfio/devices/\($0)" }
    }

    /// `vfioN` of `<device>/vfio-dev/vfioN` that has a `dev` attribute: 6.1 shows the
    /// directory without one, and then there is no node.
    func deviceNodeNames(of address: PCIAddress) -> [String] {
        ((try? io.list(paths.attribute(address, "vfio-dev"))) ?? []).filter {
            $0.hasPrefix("vfio") && io.exists(paths.attribute(address, "vfio-dev/\($0)/dev"))
        }.sorted()
    }

    /// The device's own iommufd node and its owner, group and mode; nil without one.
    func deviceNode(of address: PCIAddress) -> DeviceNode? {
        for name in deviceNodeNames(of: address) {
            if let state = try? io.nodeState(paths.under("/dev/vfio/devices/\(name)")) { return DeviceNode(name: name, state: state) }
        }
        return nil
    }
}

extension SysfsReader {
    /// Who holds the device's VFIO nodes, and for a PF its VFs' (`virtfnN` links).
    func holders(_ address: PCIAddress, group: Int?) -> [String] {
        var devices = [(address: address, group: group)]
        for link in ((try? io.list(paths.device(address))) ?? []).filter({ $0.hasPrefix("virtfn") }).sorted() {
            guard let target = try? io.readLink(paths.attribute(address, link)), let name = lastComponent(target),
                  let vf = PCIAddress(name) else { continue }
            devices.append((vf, try? self.group(of: vf)))
        }
        return NodeHolders(io: io, paths: paths).heldBy(devices)
    }
}
