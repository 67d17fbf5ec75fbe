import HotplugAgent
import HostInterface
import Policy

/// What the policies claim: each device's group viability, its resets, its AtomicOps path.
extension Doctor {
    func devices() -> [Finding] {
        guard let raw = try? reader.fullView() else { return [] }
        let planner = Planner(policies: policies)
        let view = reader.read(planner.needs(in: raw), into: raw)
        var findings: [Finding] = []
        for plan in planner.planAll(in: view) {
            guard let policyName = plan.policy, let policy = policies.policies.first(where: { $0.name == policyName })
            else { continue }
            let device = plan.device
            let subject = "\(device.address) [\(policyName)]"
            let claimed = view.isVFIO(
                plan.steps.compactMap { if case .bind(let driver, _) = $0.action { driver } else { nil } }.first
                    ?? device.driver)
            if claimed, let group = device.iommuGroup {
                // Doctor judges the group as the policies will leave it; `list` shows it now.
                if let warning = plan.warnings.first(where: { $0.hasPrefix("IOMMU group") }) {
                    findings.append(
                        Finding(
                            status: .fail, subject: subject, message: warning + " (once the policies apply)",
                            fix: "claim-group = true, or policies for the other devices of group \(group)"))
                } else {
                    findings.append(
                        Finding(
                            status: .pass, subject: subject,
                            message: "IOMMU group \(group) is viable for VFIO once the policies apply"))
                }
            }
            if claimed { findings += resets(device, policy, subject: subject, view: view) }
            if policy.atomicOps && plan.via == nil {
                if let refusal = plan.refusals.first(where: { $0.what == "set AtomicOp Requester Enable" }) {
                    findings.append(
                        Finding(
                            status: .fail, subject: subject, message: "AtomicOps: \(refusal.reason)",
                            fix: "move the device to a slot whose path routes AtomicOps"))
                } else {
                    findings.append(
                        Finding(status: .pass, subject: subject, message: "the path to the root port carries AtomicOps")
                    )
                }
            }
        }
        return findings
    }

    /// A reset method present (or disabled on purpose); and seed 000's PLX problem: a GPU
    /// behind a PLX/Broadcom switch whose resets are still enabled.
    func resets(_ device: PCIDevice, _ policy: Policy, subject: String, view: HostView) -> [Finding] {
        let methods = (try? io.read(paths.attribute(device.address, "reset_method"))).map(firstLine)
        let disabledByPolicy = policy.sysfs.contains { $0.path == "reset_method" && $0.value.isEmpty }
        var findings: [Finding] = []
        let isGPU = device.classCode >> 16 == 0x03 || device.classCode >> 16 == 0x12
        let plx =
            isGPU
            ? (reader.upstream(of: device.address) ?? []).first { port in
                guard let bridge = view.devices[port.address] else { return false }
                return bridge.id.vendor == 0x10b5 || (bridge.id.vendor == 0x1000 && bridge.id.device & 0xff00 == 0xc000)
            } : nil
        if let plx, methods?.isEmpty == false, !disabledByPolicy {
            findings.append(
                Finding(
                    status: .fail, subject: subject,
                    message:
                        "behind PLX/Broadcom switch \(plx.address) with resets enabled (\(methods!)): a reset there "
                            + "makes the GPU's BARs vanish",
                    fix:
                        "keep only a reset the switch survives in policy \(quoted(policy.name)) (sysfs = "
                            + "[\"reset_method=device_specific\"], or the vendor-reset module); \"reset_method=\" "
                            + "disables every reset, and the GPU then carries one guest's memory into the next"
                ))
        } else if disabledByPolicy || methods?.isEmpty == true {
            // Never reset, the device carries one tenant's memory and state into the next VM.
            findings.append(
                Finding(
                    status: .warn, subject: subject,
                    message: "resets disabled" + (disabledByPolicy ? " by the policy" : "")
                        + ": the device is never reset, so what one VM left in it reaches the next",
                    fix:
                        "use a reset that works on it (reset_method bus or device_specific, or the vendor-reset "
                            + "module), or give the device to one tenant only"
                ))
        } else if let methods {
            findings.append(Finding(status: .pass, subject: subject, message: "reset methods: \(methods)"))
        } else {
            findings.append(
                Finding(
                    status: .warn, subject: subject,
                    message: "no reset method: the device cannot be reset between guests",
                    fix: "check the device's FLR support, or accept state leaking between guests"))
        }
        return findings
    }
}
