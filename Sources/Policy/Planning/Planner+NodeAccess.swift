/// The group node's and the device node's owner, group and mode: one group, one owner.
extension Planner {
    /// The policies that set the node of a group: for each member that goes to a VFIO driver
    /// by its own policy, that policy's position and the member, in policy order. `known`
    /// is one such member whose policy the caller found already (it is not looked up again:
    /// for a device alone in its group, the only one).
    func nodePolicies(
        of group: Int, in host: HostView, known: (index: Int, device: PCIAddress)
    ) -> [(index: Int, device: PCIAddress)] {
        var setters = [known]
        for member in host.members(of: group) where member.address != known.device {
            guard !member.vfPending, let index = policies.firstMatchIndex(for: member, vfio: host.vfio),
                policies.policies[index].setsNodeAccess, host.isVFIO(intendedDriver(of: member, in: host))
            else { continue }
            setters.append((index, member.address))
        }
        return setters.sorted { ($0.index, $0.device) < ($1.index, $1.device) }
    }

    /// One group, one owner: the first policy (in policy order) of the group's devices
    /// decides the node; another that asks something else is reported once, on the first
    /// of its devices, and never applied, so the node is not flipped back and forth.
    /// `claim` is the device's own (not through a peer's claim-group), and takes it to a
    /// VFIO driver.
    func planNodeAccess(group: Int, device: PCIDevice, claim: Claim, into plan: inout DevicePlan, in host: HostView) {
        let policy = claim.policy
        let setters = nodePolicies(of: group, in: host, known: (claim.index, device.address))
        if let first = setters.first, let mine = setters.first(where: { $0.device == device.address }),
            mine.index != first.index
        {
            let decider = policies.policies[first.index]
            let asksOtherwise =
                (decider.owner?.id, decider.group?.id, decider.mode) != (
                    policy.owner?.id, policy.group?.id, policy.mode
                )
            // Reported once: on the first device of the policy that is overruled.
            if asksOtherwise, setters.first(where: { $0.index == mine.index })?.device == device.address {
                plan.warnings.append(
                    "/dev/vfio/\(group) is shared by the group: policy \(quoted(decider.name)) comes first and decides "
                        + "its owner, group and mode; policy \(quoted(policy.name)) asks otherwise and is not applied "
                        + "to it"
                )
            }
            return
        }
        let action = Action.setNodeAccess(group: group, owner: policy.owner, nodeGroup: policy.group, mode: policy.mode)
        guard let node = host.vfioNodes[group] else {
            if plan.steps.contains(where: { if case .bind = $0.action { true } else { false } }) {
                plan.steps.append(Step(action, reason: "binding creates the node"))
            } else {
                plan.warnings.append("/dev/vfio/\(group) does not exist")
            }
            return
        }
        guard node.isCharacterDevice else {
            plan.refusals.append(Refusal(action.summary, reason: "/dev/vfio/\(group) is not a character device"))
            return
        }
        if policy.nodeAccessDiffers(from: node) {
            plan.steps.append(Step(action, reason: "it is \(node.description) now"))
        }
    }
}
