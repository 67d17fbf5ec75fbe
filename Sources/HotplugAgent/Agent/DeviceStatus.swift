import Policy

/// One device's standing, as `status` prints it.
package struct DeviceStatus: Encodable, Equatable {
    package var address: String
    package var policy: String
    package var wants: String?
    package var driver: String?
    /// `/dev/vfio/<group>`'s owner, group and mode (`1000:993 0660`).
    package var node: String?
    /// The driver it was on before the agent moved it.
    package var origin: String?
    /// `settled`, `waiting`, `refused` or `failed`.
    package var state: String
    package var reason: String?
    /// Its names in the CDI specs (`hotplug-agent.io/vfio=gpu-0`), while it is in one.
    package var cdi: [String] = []

    /// `cdi`: the specs to name devices from (`status` passes the host's; metrics need none).
    package static func all(
        _ plans: [DevicePlan], view: HostView, planner: Planner, records: StatusStore,
        cdi specs: [CDISpec] = []
    ) -> [DeviceStatus] {
        plans.compactMap { plan in
            guard let policy = plan.policy else { return nil }
            let device = plan.device
            let wants = planner.policies.policies.first { $0.name == policy }.flatMap {
                planner.target(of: $0, for: device, in: view)
            }
            var entry = DeviceStatus(
                address: device.address.description, policy: policy, wants: wants?.description, driver: device.driver,
                node: device.iommuGroup.flatMap { view.vfioNodes[$0] }?.description,
                origin: device.origin.map { $0.driver ?? "none" }, state: "settled", reason: nil,
                cdi: planner.cdiNames(of: device.address, in: specs))
            // A failure is recorded about work still to do: on a device with none left
            // (settled since, by another run beside the daemon or by hand), what sysfs shows
            // stands, and a record not removed yet is an old one. A hung write is not over
            // whatever sysfs shows (the kernel drops the driver link before the driver's
            // remove, where unbinds hang).
            let unsettled = !plan.steps.isEmpty || !plan.waits.isEmpty || !plan.refusals.isEmpty
            switch records.load(device.address) {
            case .failed(let error)? where unsettled:
                (entry.state, entry.reason) = ("failed", error)
            case .stuck(let what)?:
                (entry.state, entry.reason) = ("waiting", what)
            case .failed?, nil:
                if let wait = plan.waits.first {
                    (entry.state, entry.reason) = ("waiting", "\(wait.what): \(wait.reason)")
                } else if let refusal = plan.refusals.first {
                    (entry.state, entry.reason) = ("refused", "\(refusal.what): \(refusal.reason)")
                } else if let step = plan.steps.first {
                    (entry.state, entry.reason) = ("waiting", "not done yet: \(step.action.summary)")
                }
            }
            return entry
        }
    }

    /// `0000:12:00.0 [mi300x] on vfio-pci (wants vfio-pci), /dev/vfio/12 1000:993 0660, from amdgpu: settled`.
    package var line: String {
        var parts = ["\(address) [\(policy)] on \(driver ?? "no driver")" + (wants.map { " (wants \($0))" } ?? "")]
        if let node { parts.append("node \(node)") }
        if let origin { parts.append("from \(origin)") }
        return parts.joined(separator: ", ") + ": \(state)" + (reason.map { ": \($0)" } ?? "")
    }
}
