/// What a device's steps leave behind, once the executor has done and verified each: the
/// view a fresh look would read, so a reconcile confirms its work without reading again
/// what its own checks already read.
extension HostView {
    /// The view after `steps` on `address`, where each step's outcome is what the step
    /// says: a bind leaves the device on its driver with its override naming it (the
    /// executor read the driver link back), an unbind leaves it unbound with `none`, node
    /// owners and `/dev/iommu` entries are what was set. What only the kernel or the
    /// agent's records can tell is left unread for the reader to fill in: the device's
    /// `vfio-dev/` entries and its device node (the kernel makes them on a bind), holders,
    /// how the host uses it, and its origin record.
    ///
    /// Nil when a step's outcome is not the step's to say (a module loaded, a config or
    /// attribute write, SR-IOV, a return to the driver it came from): then the device is
    /// read again.
    public func after(_ steps: [Step], on address: PCIAddress) -> HostView? {
        guard var device = devices[address] else { return nil }
        var nodes = vfioNodes
        var iommu = iommu
        for step in steps {
            switch step.action {
            case .bind(let driver, _):
                device.driver = driver
                device.driverOverride = driver
                device.forgetKernelMade()
            case .unbind:
                device.driver = nil
                device.driverOverride = "none"
                device.forgetKernelMade()
            case .setNodeAccess(let group, let owner, let nodeGroup, let mode):
                // A node the kernel has just made is root's, 0600.
                let now = nodes[group] ?? NodeState(uid: 0, gid: 0, mode: 0o600)
                nodes[group] = NodeState(
                    uid: owner?.id ?? now.uid, gid: nodeGroup?.id ?? now.gid, mode: mode ?? now.mode)
            case .setDeviceNodeAccess:
                device.deviceNode = nil
            case .grantIOMMU(let users, let groups):
                guard var access = iommu else { return nil }
                access.users.formUnion(users.map(\.id))
                access.groups.formUnion(groups.map(\.id))
                iommu = access
            case .forgetOrigin:
                device.origin = nil
            case .loadModule, .writeAttribute, .writeConfig, .restore, .setAutoprobe, .setVFCount:
                return nil
            }
        }
        return replacing(device, vfioNodes: nodes, iommu: iommu)
    }

}

extension PCIDevice {
    /// What the kernel makes or changes when the device changes driver, and the records
    /// that follow it: left for the reader to read.
    mutating func forgetKernelMade() {
        vfioDeviceNames = []
        deviceNode = nil
        heldBy = nil
        holderPIDs = []
        inUse = nil
        origin = nil
    }
}
