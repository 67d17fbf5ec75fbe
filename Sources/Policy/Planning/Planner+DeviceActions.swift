/// The actions that change a device itself rather than its driver: attribute and config
/// writes, AtomicOps, SR-IOV. Each compares what sysfs shows with what the policy wants,
/// so a write is planned only when something differs.
extension Planner {
    /// What must be read about `host` beyond its snapshot for its devices to be planned.
    /// With `only`, for those devices alone (the others' were read before).
    public func needs(in host: HostView, only: Set<PCIAddress>? = nil) -> ViewNeeds {
        var needs = ViewNeeds()
        needs.variants = policies.policies.contains { $0.driver == .vfio }
        func add(_ device: PCIDevice) {
            let deviceNeeds = self.needs(for: device, in: host)
            if deviceNeeds != ReadNeeds() { needs.devices[device.address] = deviceNeeds }
        }
        if let only {
            for address in only { if let device = host.devices[address] { add(device) } }
        } else {
            for device in host.devices.values { add(device) }
        }
        return needs
    }

    /// What must be read for `device` beyond its identity for its policy to be planned.
    public func needs(for device: PCIDevice, in host: HostView) -> ReadNeeds {
        var needs = ReadNeeds()
        guard !device.vfPending else { return needs }
        // Its own first match, when it has one (a claim not through a peer).
        let claim = claim(for: device, in: host)
        // Whether the host uses a device matters for any device a policy (or a group peer's
        // claim-group) would unbind, whatever the policy allows: `plan` says so either way.
        // A device already on the driver its policy wants is not unbound: nothing to read.
        if let current = device.driver, !device.isBridge {
            let wouldMove = { (policy: Policy) in
                target(of: policy, for: device, in: host).map { $0 != .named(current) } ?? false
            }
            needs.inUse =
                claim.flatMap { $0.via == nil ? wouldMove($0.policy) : nil }
                ?? (device.iommuGroup != nil
                    && host.members(of: device.iommuGroup!).contains { peer in
                        guard peer.address != device.address,
                            let policy = policies.firstMatch(for: peer, vfio: host.vfio)
                        else { return false }
                        return policy.claimGroup && wouldMove(policy)
                    })
        }
        needs.origin = claim == nil || host.isVFIO(device.driver) || device.driver == "pci-stub"
        // A device on a VFIO driver that may leave it (returned, or moved by its policy).
        if host.isVFIO(device.driver) {
            needs.holders =
                claim.map { target(of: $0.policy, for: device, in: host).map { $0 != .named(device.driver!) } ?? false }
                ?? true
        }
        // Its own node: to own it, and to list it in the CDI spec.
        let nodeWanted = claim.map { $0.policy.setsNodeAccess || $0.policy.cdiIOMMUFD } ?? false
        needs.deviceNode = host.isVFIO(device.driver) && nodeWanted
        guard let claim, claim.via == nil else { return needs }
        let policy = claim.policy
        needs.attributes = policy.sysfs
        needs.config = !policy.config.isEmpty || policy.atomicOps
        needs.upstreamConfig = policy.atomicOps
        needs.sriov = policy.sriovNumVFs != nil || policy.sriovAutoprobe != nil
        // A PF whose VF count would change: its VFs may be in guests.
        needs.holdersUnlessVFCount = policy.sriovNumVFs
        return needs
    }

    func planAttributes(_ policy: Policy, _ device: PCIDevice, into plan: inout DevicePlan) {
        for write in policy.sysfs {
            let readings = device.attributes[write.path] ?? []
            if readings.isEmpty {
                plan.refusals.append(Refusal("set \(write.path)", reason: "no such attribute below \(device.address)"))
            }
            for reading in readings {
                let action = Action.writeAttribute(path: reading.path, value: write.value)
                switch reading.state {
                case .refused(let why):
                    plan.refusals.append(Refusal(action.summary, reason: why))
                case .value(let shown):
                    // Compared in bytes, as the kernel keeps them: `==` on strings holds
                    // canonically equal spellings (`é`, `e` and a combining mark) equal.
                    let bytes = shown.utf8.last == UInt8(ascii: "\n") ? shown.utf8.dropLast() : shown.utf8[...]
                    if !bytes.elementsEqual(write.value.utf8) {
                        plan.steps.append(Step(action, reason: "it shows \(quoted(Substring(bytes)))"))
                    }
                }
            }
        }
    }

    func planConfig(_ policy: Policy, _ device: PCIDevice, into plan: inout DevicePlan) {
        for write in policy.config {
            guard let config = device.config else {
                plan.refusals.append(Refusal("set config \(write.text)", reason: "the config space cannot be read"))
                continue
            }
            switch config.resolve(write) {
            case .failure(let why):
                plan.refusals.append(Refusal("set config \(write.text)", reason: why.text))
            case .success(let offset):
                let current = config.value(at: offset, width: write.width)!
                if current & write.mask != write.value {
                    let action = Action.writeConfig(
                        offset: offset, width: write.width, value: write.value, mask: write.mask, expression: write.text
                    )
                    plan.steps.append(
                        Step(action, reason: "those bits read \(hex(current & write.mask, width: write.width * 2))"))
                }
            }
        }
    }

    /// `pci_enable_atomic_ops_to_root()` with the mask amdgpu passes for ROCm: an endpoint,
    /// every switch port on the way routing AtomicOps, no upstream port blocking egress, and
    /// a root port completing both 32- and 64-bit AtomicOps.
    func planAtomicOps(_ device: PCIDevice, into plan: inout DevicePlan) {
        let what = "set AtomicOp Requester Enable"
        guard let config = device.config, let pcie = config.capability(0x10), let control = config.deviceControl2 else {
            plan.refusals.append(Refusal(what, reason: "\(device.address) is not a PCI Express device"))
            return
        }
        if device.isVF {
            plan.refusals.append(Refusal(what, reason: "a VF uses its PF's setting"))
            return
        }
        guard let type = config.portType, [.endpoint, .legacyEndpoint, .integratedEndpoint].contains(type) else {
            plan.refusals.append(Refusal(what, reason: "\(device.address) is not an endpoint"))
            return
        }
        guard let ports = device.upstream else {
            plan.refusals.append(Refusal(what, reason: "the config space of the ports above it cannot be read"))
            return
        }
        for port in ports {
            let capabilities = port.config.deviceCapabilities2 ?? 0
            switch port.config.portType {
            case .upstreamPort?, .downstreamPort?:
                let side = port.config.portType == .upstreamPort ? "upstream" : "downstream"
                if capabilities & 0x40 == 0 {
                    plan.refusals.append(
                        Refusal(
                            what,
                            reason:
                                "the path cannot carry AtomicOps: switch \(side) port \(port.address) does not route "
                                + "them"
                        ))
                    return
                }
            case .rootPort?:
                if capabilities & 0x180 != 0x180 {
                    let completes =
                        capabilities & 0x80 != 0 ? "only 32-bit" : capabilities & 0x100 != 0 ? "only 64-bit" : "no"
                    plan.refusals.append(
                        Refusal(
                            what,
                            reason:
                                "the path cannot carry AtomicOps: root port \(port.address) completes \(completes) "
                                + "AtomicOps; both 32- and 64-bit are needed"
                        ))
                    return
                }
            default:
                break
            }
            if port.config.portType == .upstreamPort, (port.config.deviceControl2 ?? 0) & 0x80 != 0 {
                plan.refusals.append(
                    Refusal(
                        what,
                        reason:
                            "the path cannot carry AtomicOps: switch upstream port \(port.address) blocks AtomicOp "
                            + "egress"
                    ))
                return
            }
        }
        if control & 0x40 == 0 {
            let action = Action.writeConfig(
                offset: pcie + 0x28, width: 2, value: 0x40, mask: 0x40, expression: "CAP_EXP+28.w=0040:0040")
            let root = ports.last.map { "root port \($0.address)" } ?? "the root complex"
            plan.steps.append(Step(action, reason: "the path to \(root) carries AtomicOps"))
        }
    }

    func planSRIOV(_ policy: Policy, _ device: PCIDevice, driver: String?, into plan: inout DevicePlan) {
        guard policy.sriovNumVFs != nil || policy.sriovAutoprobe != nil else { return }
        guard let sriov = device.sriov else {
            plan.refusals.append(Refusal("configure SR-IOV", reason: "\(device.address) has no SR-IOV capability"))
            return
        }
        if let autoprobe = policy.sriovAutoprobe, autoprobe != sriov.autoprobe {
            plan.steps.append(
                Step(
                    .setAutoprobe(autoprobe),
                    reason: "it is \(sriov.autoprobe ? 1 : 0); written before VFs are made"))
        }
        guard let count = policy.sriovNumVFs, count != sriov.numVFs else { return }
        if count > sriov.totalVFs {
            plan.refusals.append(
                Refusal("set sriov_numvfs to \(count)", reason: "the PF supports at most \(sriov.totalVFs) VFs"))
        } else if driver == nil {
            plan.refusals.append(
                Refusal(
                    "set sriov_numvfs to \(count)", reason: "no driver is bound to the PF, and sriov_numvfs needs one"))
        } else if sriov.numVFs != 0, let held = device.heldBy, !held.isEmpty {
            // Changing the count removes every VF first: those in guests would vanish.
            plan.waits.append(
                Refusal(
                    "set sriov_numvfs to \(count)",
                    reason: held.joined(separator: ", ") + "; changing the count would remove its VFs from under the VM"
                ))
        } else if sriov.numVFs != 0, !policy.allowInUse, let uses = device.vfsInUse, !uses.isEmpty {
            // And those the host uses would be pulled from under it.
            let why =
                "the host uses its VFs: \(uses.joined(separator: ", ")); "
                + "changing the count would destroy them (allow-in-use = true allows it)"
            plan.refusals.append(Refusal("set sriov_numvfs to \(count)", reason: why))
        } else {
            if sriov.numVFs != 0 && count != 0 {
                plan.steps.append(Step(.setVFCount(0), reason: "the kernel changes a nonzero VF count only through 0"))
            }
            plan.steps.append(
                Step(
                    .setVFCount(count), reason: "policy \(quoted(policy.name)) wants \(count) VFs (now \(sriov.numVFs))"
                ))
        }
    }
}
