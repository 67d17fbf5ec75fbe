import Glibc
import HotplugAgent
import Policy

/// Processes holding `/dev/vfio` nodes (a VMM), and the `O_EXCL` probe of block devices.
extension SimulatedKernel {
    /// A process opens `/dev/vfio/<group>` (a VMM starting), or closes every hold of it.
    func holdNode(_ group: Int, pid: Int32, command: String) {
        state.write { $0.nodeOpeners[group, default: []].append(NodeOpener(device: SimulatedState.vfioDeviceNumber(group), pid: pid, command: command)) }
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

    package func openers(of devices: Set<UInt64>) -> [NodeOpener] {
        state.read { state in state.nodeOpeners.values.joined().filter { devices.contains($0.device) } }.sorted { ($0.pid, $0.device) < ($1.pid, $1.device) }
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
