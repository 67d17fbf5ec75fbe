/// What goes back when no policy wants a device: its PF's SR-IOV state, then its driver, once no VM holds it.
extension Planner {
    /// Why a device may not be unbound now: a VM holds its VFIO nodes, and the kernel's
    /// unbind would block until the VM let go. Nil when nothing holds it.
    func heldFromUnbind(_ device: PCIDevice, in host: HostView) -> String? {
        guard host.isVFIO(device.driver), let held = device.heldBy, !held.isEmpty else { return nil }
        return held.joined(separator: ", ") + "; the kernel would block in the unbind until it lets go"
    }

    /// No policy wants the device: what the agent changed goes back, once no VM holds it.
    /// A PF's SR-IOV state first (autoprobe, then the VF count it had), then its driver.
    func planReturn(_ device: PCIDevice, in host: HostView) -> DevicePlan {
        var plan = DevicePlan(device: device)
        guard let origin = device.origin else { return plan }
        if let before = origin.sriov, let now = device.sriov,
            (now.numVFs, now.autoprobe) != (before.numVFs, before.autoprobe)
        {
            planSRIOVReturn(to: before, from: now, device, into: &plan)
            return plan
        }
        guard let movedTo = origin.movedTo else {
            plan.steps.append(Step(.forgetOrigin, reason: "its SR-IOV state is as it was before the agent changed it"))
            return plan
        }
        if device.driver == movedTo, let held = heldFromUnbind(device, in: host) {
            plan.waits.append(Refusal(Action.restore(origin).summary, reason: held))
        } else if device.driver == movedTo {
            let from = origin.driver.map { "from \($0)" } ?? "while it was unbound"
            plan.steps.append(
                Step(.restore(origin), reason: "no policy wants it any more; the agent moved it to \(movedTo) \(from)"))
        } else {
            plan.steps.append(Step(.forgetOrigin, reason: "no policy wants it, and it is no longer on \(movedTo)"))
        }
        return plan
    }

    /// A PF no policy wants: its autoprobe as it was, then the VF count it had (through 0),
    /// unless a VM holds one of the VFs that would go.
    func planSRIOVReturn(
        to before: SRIOVOrigin, from now: SRIOVState, _ device: PCIDevice, into plan: inout DevicePlan
    ) {
        let reason = "no policy wants it any more; it had"
        if before.autoprobe != now.autoprobe {
            plan.steps.append(
                Step(
                    .setAutoprobe(before.autoprobe),
                    reason: "\(reason) autoprobe \(before.autoprobe ? 1 : 0) before the agent changed it"))
        }
        guard before.numVFs != now.numVFs else { return }
        let what = "set sriov_numvfs to \(before.numVFs)"
        if now.numVFs != 0, let held = device.heldBy, !held.isEmpty {
            plan.waits.append(
                Refusal(
                    what,
                    reason: held.joined(separator: ", ") + "; changing the count would remove its VFs from under the VM"
                ))
        } else if now.numVFs != 0, let uses = device.vfsInUse, !uses.isEmpty {
            let why = "the host uses its VFs: \(uses.joined(separator: ", ")); changing the count would destroy them"
            plan.refusals.append(Refusal(what, reason: why))
        } else if device.driver == nil {
            plan.refusals.append(Refusal(what, reason: "no driver is bound to the PF, and sriov_numvfs needs one"))
        } else {
            if now.numVFs != 0 && before.numVFs != 0 {
                plan.steps.append(Step(.setVFCount(0), reason: "the kernel changes a nonzero VF count only through 0"))
            }
            plan.steps.append(
                Step(.setVFCount(before.numVFs), reason: "\(reason) \(before.numVFs) VFs before the agent changed them")
            )
        }
    }
}
