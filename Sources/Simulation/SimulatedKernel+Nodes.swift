import Glibc
import HostInterface
import Policy

/// The simulated kernel's device nodes: /dev/vfio's group and device nodes, /dev/iommu and its ACL.
extension SimulatedKernel {
    package func nodeState(_ path: String) throws(IOFailure) -> NodeState? {
        state.read { state in
            let node: SimulatedState.Node?
            switch parse(path) {
            case .vfioNode(let group): node = state.nodes[group]
            case .vfioDeviceNode(let number): node = state.deviceNodes[number]
            default: node = nil
            }
            return node.map { NodeState(uid: $0.uid, gid: $0.gid, mode: $0.mode) }
        }
    }

    package func setNodeAccess(
        _ path: String, uid: UInt32?, gid: UInt32?, mode: UInt16?, device: UInt64?
    ) throws(IOFailure) {
        try state.write { state throws(IOFailure) in
            func apply(_ node: inout SimulatedState.Node) {
                if let uid { node.uid = uid }
                if let gid { node.gid = gid }
                if let mode { node.mode = mode }
            }
            switch parse(path) {
            case .vfioNode(let group) where state.nodes[group] != nil:
                apply(&state.nodes[group]!)
            case .vfioDeviceNode(let number) where state.deviceNodes[number] != nil:
                if let device, device != SimulatedState.deviceNodeNumber(number) {
                    throw IOFailure(.open, path, errno: .ESTALE, detail: "the node is another device's now, left alone")
                }
                apply(&state.deviceNodes[number]!)
            default:
                throw IOFailure(.open, path, errno: .ENOENT)
            }
        }
    }

    package func nodeAccess(_ path: String) throws(IOFailure) -> IOMMUAccess? {
        state.read { state in
            guard case .devNode("iommu") = parse(path), let iommu = state.iommu else { return nil }
            return (iommu.acl ?? POSIXACL(mode: iommu.node.mode)).access(owner: iommu.node.uid, group: iommu.node.gid)
        }
    }

    package func grantNodeAccess(
        _ path: String, users: [UInt32], groups: [UInt32]
    ) throws(IOFailure)
        -> IOMMUGrants
    {
        try state.write { state throws(IOFailure) in
            guard case .devNode("iommu") = parse(path), let iommu = state.iommu else {
                throw IOFailure(.open, path, errno: .ENOENT)
            }
            var acl = iommu.acl ?? POSIXACL(mode: iommu.node.mode)
            let made = acl.grant(users: users, groups: groups)
            state.iommu!.acl = acl
            return made
        }
    }

    package func revokeNodeAccess(_ path: String, users: [UInt32], groups: [UInt32]) throws(IOFailure) {
        try state.write { state throws(IOFailure) in
            guard case .devNode("iommu") = parse(path), let iommu = state.iommu else {
                throw IOFailure(.open, path, errno: .ENOENT)
            }
            var acl = iommu.acl ?? POSIXACL(mode: iommu.node.mode)
            acl.revoke(users: users, groups: groups)
            state.iommu!.acl = acl
        }
    }
}
