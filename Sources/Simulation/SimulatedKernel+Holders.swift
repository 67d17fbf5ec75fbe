import Glibc
import HostInterface
import Policy

/// Processes holding `/dev/vfio` nodes (a VMM), and the `O_EXCL` probe of block devices.
extension SimulatedKernel {
    /// A process opens `/dev/vfio/<group>` (a VMM starting), or closes every hold of it.
    func holdNode(_ group: Int, pid: Int32, command: String) {
        state.write {
            $0.nodeOpeners[group, default: []].append(
                NodeOpener(device: SimulatedState.vfioDeviceNumber(group), pid: pid, command: command))
        }
    }

    func closeNode(_ group: Int) {
        state.write { $0.nodeOpeners[group] = nil }
    }

    package func deviceNumber(_ path: String) -> UInt64? {
        switch parse(path) {
        case .vfioNode(let group) where state.read({ $0.nodes[group] != nil }):
            return SimulatedState.vfioDeviceNumber(group)
        case .vfioDeviceNode(let number) where state.read({ $0.deviceNodes[number] != nil }):
            return SimulatedState.deviceNodeNumber(number)
        default:
            return nil
        }
    }

    /// A process holds `address` through a VFIO device descriptor or a mapping of a BAR,
    /// after closing the group node; `/proc` shows it as `hold` (which may not name it).
    func holdDescriptor(of address: PCIAddress, shown hold: NodeOpener.Hold, pid: Int32, command: String) {
        state.write { $0.otherHolds.append((address, NodeOpener(hold, pid: pid, command: command))) }
    }

    func releaseDescriptors() {
        state.write { $0.otherHolds = [] }
    }

    package func openers(of nodes: Set<UInt64>, devices: Set<PCIAddress>) -> [NodeOpener] {
        state.read { state in
            let onNodes = state.nodeOpeners.values.joined().filter { opener in
                if case .node(let number) = opener.hold { return nodes.contains(number) }
                return false
            }
            let others = state.otherHolds.map(\.opener).filter { opener in
                switch opener.hold {
                case .node: return false
                case .descriptor(let address?): return devices.contains(address)
                case .descriptor(nil), .mapping: return !devices.isEmpty
                }
            }
            return Array(onNodes) + others
        }.sorted { $0.pid < $1.pid }
    }

    package func tryExclusiveOpen(_ path: String) -> Errno? {
        guard case .devNode(let name) = parse(path) else { return .ENOENT }
        return state.read { state in
            guard let (_, disk) = state.disk(name) else { return .ENOENT }
            if let denied = disk.probeDenied { return denied == "EACCES" ? .EACCES : .EPERM }
            return disk.isBusy ? .EBUSY : nil
        }
    }
}
