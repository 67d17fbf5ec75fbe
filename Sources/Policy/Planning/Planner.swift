/// Decides, for one device at a time, what reconciling it would do. A pure function of the
/// host view and the policies: it reads nothing and changes nothing.
public struct Planner: Sendable {
    public let policies: PolicySet

    public init(policies: PolicySet) {
        self.policies = policies
    }

    /// The policy that governs a device: its own first match or, when no policy matches it,
    /// the `claim-group` policy of a peer in its IOMMU group.
    struct Claim {
        var policy: Policy
        /// The policy's position in `policies`.
        var index: Int
        var via: PCIAddress?
    }

    func claim(for device: PCIDevice, in host: HostView) -> Claim? {
        if let index = policies.firstMatchIndex(for: device, vfio: host.vfio) {
            return Claim(policy: policies.policies[index], index: index, via: nil)
        }
        guard !device.isBridge, let group = device.iommuGroup else { return nil }
        var best: (index: Int, peer: PCIAddress)?
        for peer in host.members(of: group) where peer.address != device.address && !peer.isBridge {
            guard let index = policies.firstMatchIndex(for: peer, vfio: host.vfio) else { continue }
            let policy = policies.policies[index]
            guard policy.claimGroup, let target = target(of: policy, for: peer, in: host),
                refusal(of: target, for: peer, by: policy, in: host) == nil
            else { continue }
            if best == nil || index < best!.index { best = (index, peer.address) }
        }
        return best.map { Claim(policy: policies.policies[$0.index], index: $0.index, via: $0.peer) }
    }

    /// The driver a policy puts `device` on: its `driver`, with `"vfio"` resolved to the VFIO
    /// driver made for the device (or vfio-pci).
    public func target(of policy: Policy, for device: PCIDevice, in host: HostView) -> DriverChoice? {
        guard policy.driver == .vfio else { return policy.driver }
        return .named(host.variants.choose(for: device).driver)
    }

    /// Why moving `device` to `target` is refused, nil when it is allowed.
    func refusal(of target: DriverChoice, for device: PCIDevice, by policy: Policy, in host: HostView) -> String? {
        if device.isBridge { return "bridges are never unbound or claimed" }
        // Even while no PCI driver is bound: efifb or simpledrm may still scan out of it.
        if device.bootVGA && !policy.allowBootVGA {
            return "\(device.address) is the boot VGA device (allow-boot-vga = true allows it)"
        }
        if case .named(let name) = target, host.isVFIO(name), device.iommuGroup == nil {
            return "the device has no IOMMU group (is the IOMMU enabled?)"
        }
        if !policy.allowInUse {
            if device.driver != nil, let uses = device.inUse, !uses.isEmpty {
                return "the host uses it: \(uses.joined(separator: ", ")) (allow-in-use = true allows it)"
            }
            if policy.claimGroup, let group = device.iommuGroup {
                // Nor a group that claim-group would take with such a device in it.
                for peer in host.members(of: group) where peer.address != device.address && !peer.isBridge {
                    guard policies.firstMatchIndex(for: peer, vfio: host.vfio) == nil, peer.driver != nil,
                        let uses = peer.inUse, !uses.isEmpty
                    else { continue }
                    return
                        "claim-group would take \(peer.address), which the host uses: \(uses.joined(separator: ", ")) "
                        + "(allow-in-use = true allows it)"
                }
            }
        }
        return nil
    }

    /// The driver a device will be on once its own plan has run.
    func intendedDriver(of device: PCIDevice, in host: HostView) -> String? {
        intendedDriver(of: device, claimedBy: claim(for: device, in: host), in: host)
    }

    /// The same, with the device's claim already found.
    func intendedDriver(of device: PCIDevice, claimedBy claim: Claim?, in host: HostView) -> String? {
        guard let claim, let target = target(of: claim.policy, for: device, in: host),
            isChange(target, for: device, in: host),
            refusal(of: target, for: device, by: claim.policy, in: host) == nil
        else { return device.driver }
        if case .named(let name) = target { return name }
        return nil
    }

    func isChange(_ target: DriverChoice, for device: PCIDevice, in host: HostView) -> Bool {
        switch target {
        case .named(let name): device.driver != name
        case .none: device.driver != nil
        // Resolved by `target(of:for:in:)` before it gets here.
        case .vfio: !host.isVFIO(device.driver)
        }
    }

    public func plan(for device: PCIDevice, in host: HostView) -> DevicePlan {
        if device.vfPending {
            var plan = DevicePlan(device: device)
            plan.warnings.append("a VF whose SR-IOV links are not there yet; decided once they are")
            return plan
        }
        guard let claim = claim(for: device, in: host) else { return planReturn(device, in: host) }
        let policy = claim.policy
        var plan = DevicePlan(device: device, policy: policy.name, via: claim.via)
        // In the contract's order: sysfs, config, atomic-ops, driver, SR-IOV, the node.
        if claim.via == nil {
            planAttributes(policy, device, into: &plan)
            planConfig(policy, device, into: &plan)
            if policy.atomicOps { planAtomicOps(device, into: &plan) }
        }

        if let target = target(of: policy, for: device, in: host), isChange(target, for: device, in: host) {
            var reason =
                claim.via.map { "claim-group of policy \(quoted(policy.name)), with \($0)" }
                ?? "policy \(quoted(policy.name)) wants \(policy.driver!)"
            if policy.driver == .vfio { reason += ": " + host.variants.choose(for: device).why }
            if let why = refusal(of: target, for: device, by: policy, in: host) {
                let what = device.driver.map { "unbind \($0)" } ?? "bind to \(target)"
                plan.refusals.append(Refusal(what, reason: why))
            } else if let held = heldFromUnbind(device, in: host) {
                plan.waits.append(Refusal("unbind \(device.driver!) for \(target)", reason: held))
            } else if case .named(let name) = target {
                if !host.drivers.contains(name) {
                    plan.steps.append(Step(.loadModule(name), reason: "driver \(name) is not registered"))
                }
                plan.steps.append(Step(.bind(driver: name, from: device.driver), reason: reason))
            } else if let current = device.driver {
                plan.steps.append(Step(.unbind(from: current), reason: reason))
            }
        }

        let intended = intendedDriver(of: device, claimedBy: claim, in: host)
        if claim.via == nil { planSRIOV(policy, device, driver: intended, into: &plan) }
        if host.isVFIO(intended), let group = device.iommuGroup {
            let blockers = host.members(of: group).filter {
                $0.address != device.address && !host.keepsGroupViable(intendedDriver(of: $0, in: host))
            }
            if !blockers.isEmpty {
                let names = blockers.map { "\($0.address) (\($0.driver ?? "no driver"))" }.joined(separator: ", ")
                let hint = policy.claimGroup ? "" : "; claim-group = true would bind them too"
                plan.warnings.append("IOMMU group \(group) is not viable for VFIO: held by \(names)\(hint)")
            }
            if claim.via == nil && policy.setsNodeAccess {
                planNodeAccess(group: group, device: device, claim: claim, into: &plan, in: host)
            }
            // The device's own node (iommufd), for a device of the policy or of its claim-group.
            if policy.setsNodeAccess, device.driver == intended, let node = device.deviceNode {
                if policy.nodeAccessDiffers(from: node.state) {
                    plan.steps.append(
                        Step(
                            .setDeviceNodeAccess(
                                name: node.name, owner: policy.owner, nodeGroup: policy.group, mode: policy.mode),
                            reason: "it is \(node.state.description) now"))
                }
            }
            // Whoever may open the device nodes read-write may open /dev/iommu to use them.
            if let iommu = host.iommu, device.driver == intended {
                let users = [policy.iommuUser].compactMap { $0 }.filter { !iommu.userCanOpen($0.id) }
                let groups = [policy.iommuGroup].compactMap { $0 }.filter { !iommu.groupCanOpen($0.id) }
                if !users.isEmpty || !groups.isEmpty {
                    plan.steps.append(
                        Step(
                            .grantIOMMU(users: users, groups: groups),
                            reason: "they open the device through iommufd; nothing already granted is taken away"))
                }
            }
        }
        return plan
    }

    /// The driver the policies put `device` on (directly, or through a peer's claim-group),
    /// with the policy; nil when none does, or when the move is refused.
    public func claimedDriver(
        for device: PCIDevice, in host: HostView
    ) -> (policy: Policy, via: PCIAddress?, driver: String)? {
        guard !device.vfPending, let claim = claim(for: device, in: host),
            case .named(let name)? = target(of: claim.policy, for: device, in: host)
        else { return nil }
        guard device.driver == name || refusal(of: .named(name), for: device, by: claim.policy, in: host) == nil else {
            return nil
        }
        return (claim.policy, claim.via, name)
    }

    /// The policy `list` shows for a device: the one that claims it (through claim-group
    /// when `via` is set), else the first that matches it.
    public func governingPolicy(for device: PCIDevice, in host: HostView) -> (policy: Policy, via: PCIAddress?)? {
        if let claim = claimedDriver(for: device, in: host) { return (claim.policy, claim.via) }
        return policies.firstMatch(for: device, vfio: host.vfio).map { ($0, nil) }
    }

    /// Plans for every device of the view, in address order.
    public func planAll(in host: HostView) -> [DevicePlan] {
        host.devices.keys.sorted().map { plan(for: host.devices[$0]!, in: host) }
    }
}
