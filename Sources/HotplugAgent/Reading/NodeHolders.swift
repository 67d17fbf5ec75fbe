import HostInterface
import Policy

/// Which processes hold a device through VFIO: its group node `/dev/vfio/<group>` and, on
/// kernels with iommufd device nodes, `/dev/vfio/devices/vfioN` (named by the device's
/// `vfio-dev/vfioN`), open or mapped; a device descriptor taken from the group, which
/// outlives the group node; a mapping of one of its BARs, which outlives every descriptor.
/// A VMM holds them for as long as the guest has the device; unbinding it meanwhile blocks
/// in the kernel until the VMM lets go, and removing a PF's VFs pulls them out of the
/// guest. Whether a descriptor or mapping may be this device's, the kernel answers through
/// the device's `enable` count (vfio-pci enables the device while a user has it open);
/// where it is open, a descriptor or mapping whose device the kernel does not name counts
/// as holding it, and says so.
package struct NodeHolders {
    package let io: any KernelIO
    package let paths: HostPaths
    package let vfio: VFIODrivers

    /// One line per holder (`/dev/vfio/12 is open by qemu-system-x86 (pid 4242)`) of these
    /// devices, empty when nothing holds them; and the holding processes.
    package func heldBy(_ devices: [(address: PCIAddress, group: Int?)]) -> (lines: [String], pids: Set<Int32>) {
        if let blind = cannotSeeEveryProcess() { return ([blind], []) }
        var nodes: [UInt64: String] = [:]
        var nodeDevices: [UInt64: [PCIAddress]] = [:]
        for (address, group) in devices {
            for node in self.nodes(of: address, group: group) {
                guard let number = io.deviceNumber(paths.under(node)) else { continue }
                if nodes[number] == nil { nodes[number] = node }
                nodeDevices[number, default: []].append(address)
            }
        }
        // A descriptor or mapping exists only for a device its VFIO driver has open.
        let open = devices.map(\.address).filter(isOpenThroughVFIO)
        guard !nodes.isEmpty || !open.isEmpty else { return ([], []) }
        let openers = io.openers(of: Set(nodes.keys), devices: Set(open))
        let found = openers.map { opener in
            let who = "\(opener.command) (pid \(opener.pid))"
            switch opener.hold {
            case .node(let number): return "\(nodes[number] ?? "a VFIO node") is open by \(who)"
            case .descriptor(let address?): return "a VFIO device descriptor of \(address) is held by \(who)"
            case .descriptor(nil):
                return "a VFIO device descriptor is held by \(who) (this kernel does not say of which device)"
            case .mapping:
                return "a mapping of a VFIO device's region is held by \(who) (maps does not say of which device)"
            }
        }
        // The kernel says the device is open, and no process showed how: it still is.
        var explained = Set<PCIAddress>()
        for opener in openers {
            if case .node(let number) = opener.hold {
                explained.formUnion(nodeDevices[number] ?? [])
            } else {
                explained.formUnion(open)
            }
        }
        let unseen = open.filter { !explained.contains($0) }
        let lines =
            found
            + unseen.map {
                "\($0) is open through VFIO (its enable count is not 0), by no process the agent can see"
            }
        return (lines, Set(openers.map(\.pid)))
    }

    /// Whether a VFIO driver has the device open for a user: vfio-pci enables the device
    /// (`pci_enable_device`, shown as the `enable` attribute) when its first descriptor is
    /// taken and disables it when the last reference, a descriptor or a mapping, goes.
    /// On another driver, never; where `enable` cannot be read, assumed.
    private func isOpenThroughVFIO(_ address: PCIAddress) -> Bool {
        guard vfio.contains((try? io.readLink(paths.attribute(address, "driver"))).flatMap(lastComponent)) else {
            return false
        }
        guard let count = try? io.read(paths.attribute(address, "enable")) else { return true }
        return Int(firstLine(count)) != 0
    }

    /// Why the agent cannot know that nothing holds a device: it runs in a PID namespace
    /// other than the host's (a container without the host's PID namespace), where `/proc`
    /// shows only that namespace's processes, and a VMM elsewhere is invisible. Nil in the
    /// host's own.
    package func cannotSeeEveryProcess() -> String? {
        let namespace = try? io.readLink(paths.under("/proc/self/ns/pid"))
        guard namespace != hostPIDNamespace else { return nil }
        let which =
            namespace.map { "the agent runs in PID namespace \(escapingControlCharacters($0)), not the host's" }
            ?? "the agent cannot read its PID namespace"
        return "\(which): it cannot see the processes that may hold the device"
    }

    /// The nodes a VMM opens the device through, as paths below the root.
    package func nodes(of address: PCIAddress, group: Int?) -> [String] {
        (group.map { ["/dev/vfio/\($0)"] } ?? []) + deviceNodeNames(of: address).map { "/dev/vfio/devices/\($0)" }
    }

    /// `vfioN` of `<device>/vfio-dev/vfioN` that has a `dev` attribute: 6.1 shows the
    /// directory without one, and then there is no node.
    package func deviceNodeNames(of address: PCIAddress) -> [String] {
        ((try? io.list(paths.attribute(address, "vfio-dev"))) ?? []).filter {
            $0.hasPrefix("vfio") && io.exists(paths.attribute(address, "vfio-dev/\($0)/dev"))
        }.sorted()
    }

    /// The device's own iommufd node and its owner, group and mode; nil without one. Its
    /// name is in `vfio-dev/`, read with the device; a node exists only where the kernel
    /// gave that entry a `dev` (6.2 and later), and is then in `/dev/vfio/devices`.
    package func deviceNode(of device: PCIDevice) -> DeviceNode? {
        for name in device.vfioDeviceNames {
            if let state = try? io.nodeState(paths.under("/dev/vfio/devices/\(name)")) {
                return DeviceNode(name: name, state: state)
            }
        }
        return nil
    }
}

extension SysfsReader {
    /// Who holds the device's VFIO nodes, and for a PF its VFs' (`virtfnN` links). A VF whose
    /// link cannot be read is one whose holders cannot be known: a line of its own, so the
    /// device counts as held (see `KernelIO.virtualFunctions`).
    package func holders(_ address: PCIAddress, group: Int?) -> (lines: [String], pids: Set<Int32>) {
        let (vfs, unreadable) = io.virtualFunctions(of: address, paths: paths)
        let devices = [(address: address, group: group)] + vfs.map { ($0, try? self.device($0).iommuGroup) }
        let held = NodeHolders(io: io, paths: paths, vfio: vfioDrivers()).heldBy(devices)
        return (unreadable.map { "whether a VM holds a VF cannot be checked: \($0)" } + held.lines, held.pids)
    }
}
