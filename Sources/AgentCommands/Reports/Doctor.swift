import HotplugAgent
import HostInterface
import Policy

/// The host's readiness for VFIO and for what the policies claim, like virt-host-validate:
/// each check says PASS, WARN or FAIL, and how to fix what is not right.
struct Doctor {
    enum Status: String, Comparable {
        case pass = "PASS", warn = "WARN", fail = "FAIL"
        static func < (a: Status, b: Status) -> Bool {
            [.pass, .warn, .fail].firstIndex(of: a)! < [.pass, .warn, .fail].firstIndex(of: b)!
        }
    }

    struct Finding: Equatable, CustomStringConvertible {
        var status: Status
        var subject: String
        var message: String
        var fix: String?

        var description: String { "\(status.rawValue) \(subject): \(message)" + (fix.map { "; fix: \($0)" } ?? "") }
    }

    let reader: SysfsReader
    let policies: PolicySet
    /// Reads files outside sysfs under the root: /proc/cmdline, limits.conf.
    let readFile: (String) -> String?
    let accounts: [UInt32: String]

    var io: any KernelIO { reader.io }
    var paths: HostPaths { reader.paths }

    func run() -> [Finding] {
        var findings = [iommu(), interruptRemapping(), vfioModules(), iommufd(), lockdown()]
        findings += limits()
        findings += devices()
        return findings.compactMap { $0 }
    }

    // MARK: The host

    func iommu() -> Finding? {
        let groups = (try? io.list(paths.iommuGroups)) ?? []
        let cmdline = readFile(paths.under("/proc/cmdline")) ?? ""
        let asked = cmdline.split(separator: " ").filter {
            $0.hasPrefix("intel_iommu=") || $0.hasPrefix("amd_iommu=") || $0.hasPrefix("iommu=")
        }
        if !groups.isEmpty {
            return Finding(
                status: .pass, subject: "IOMMU",
                message: "\(groups.count) IOMMU groups" + (asked.isEmpty ? "" : " (\(asked.joined(separator: " ")))"))
        }
        return Finding(
            status: .fail, subject: "IOMMU",
            message: "no IOMMU groups: the IOMMU is off"
                + (asked.isEmpty ? "" : " although the command line has \(asked.joined(separator: " "))"),
            fix:
                "enable VT-d (Intel) or AMD-Vi/IOMMU (AMD) in the firmware, and boot with intel_iommu=on or "
                    + "amd_iommu=on, plus iommu=pt"
        )
    }

    func interruptRemapping() -> Finding? {
        let parameter = paths.under("/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts")
        let unsafe = (try? io.read(parameter)).map(firstLine)
        let units = (try? io.list(paths.under("/sys/class/iommu"))) ?? []
        guard !units.isEmpty else {
            return unsafe == "Y"
                ? Finding(
                    status: .warn, subject: "interrupt remapping", message: "allow_unsafe_interrupts is on",
                    fix: "a guest can forge MSIs; prefer a platform with interrupt remapping") : nil
        }
        // Intel: ECAP bit 3 (IR); AMD-Vi always remaps when enabled.
        let remaps = units.contains { unit in
            if unit.hasPrefix("ivhd") { return true }
            guard let text = try? io.read(paths.under("/sys/class/iommu/\(unit)/intel-iommu/ecap")),
                let ecap = UInt64(firstLine(text), radix: 16)
            else { return false }
            return ecap & 0x8 != 0
        }
        if remaps {
            return Finding(status: .pass, subject: "interrupt remapping", message: "the IOMMU remaps interrupts")
        }
        if unsafe == "Y" {
            return Finding(
                status: .warn, subject: "interrupt remapping", message: "not supported; allow_unsafe_interrupts is on",
                fix: "guests can forge MSIs on this platform; use one with interrupt remapping for untrusted guests")
        }
        return Finding(
            status: .fail, subject: "interrupt remapping",
            message: "not supported, and vfio refuses devices without it",
            fix:
                "enable interrupt remapping in the firmware, or (trusted guests only) options vfio_iommu_type1 "
                    + "allow_unsafe_interrupts=1"
        )
    }

    func vfioModules() -> Finding? {
        if io.exists(paths.driver("vfio-pci")) {
            return Finding(status: .pass, subject: "vfio modules", message: "vfio-pci is registered")
        }
        return Finding(
            status: .warn, subject: "vfio modules", message: "vfio-pci is not loaded",
            fix: "the agent loads it when a policy needs it; to have it from boot, see hotplug-agent boot-config")
    }

    /// Whether the kernel has iommufd and VFIO device nodes, and whether the users the
    /// policies hand devices to can open /dev/iommu.
    func iommufd() -> Finding? {
        guard let access = try? io.nodeAccess(paths.under("/dev/iommu")) else {
            return Finding(
                status: .warn, subject: "iommufd",
                message: "no /dev/iommu: VMMs use the group nodes and /dev/vfio/vfio",
                fix:
                    "nothing to do for QEMU's -device vfio-pci; for -object iommufd, a kernel with CONFIG_IOMMUFD and "
                        + "CONFIG_VFIO_DEVICE_CDEV"
            )
        }
        let nodes =
            io.exists(paths.under("/sys/class/vfio-dev"))
            ? "device nodes in /dev/vfio/devices" : "no VFIO device nodes (CONFIG_VFIO_DEVICE_CDEV is off)"
        let users = Set(policies.policies.compactMap { $0.owner?.id }).sorted().filter { !access.userCanOpen($0) }
        let groups = Set(policies.policies.compactMap { $0.group?.id }).sorted().filter { !access.groupCanOpen($0) }
        if users.isEmpty && groups.isEmpty {
            return Finding(
                status: .pass, subject: "iommufd",
                message: "/dev/iommu and \(nodes); the policies' users can open /dev/iommu")
        }
        let names = users.map { "user \(accounts[$0] ?? String($0))" } + groups.map { "group \($0)" }
        return Finding(
            status: .warn, subject: "iommufd",
            message: "/dev/iommu and \(nodes); \(names.joined(separator: ", ")) cannot open /dev/iommu yet",
            fix: "the agent adds ACL entries for them once it claims their devices (hotplug-agent run)")
    }

    func lockdown() -> Finding? {
        guard let text = try? io.read(paths.under("/sys/kernel/security/lockdown")) else { return nil }
        let mode =
            text.split(separator: " ").first { $0.hasPrefix("[") }.map { String($0.dropFirst().dropLast()) } ?? "none"
        let needsConfig = policies.policies.contains { !$0.config.isEmpty || $0.atomicOps }
        if mode == "none" { return Finding(status: .pass, subject: "kernel lockdown", message: "off") }
        return Finding(
            status: needsConfig ? .fail : .warn, subject: "kernel lockdown",
            message: "\(mode): config space writes fail with EPERM",
            fix: needsConfig
                ? "config and atomic-ops policies cannot work; boot without lockdown (or without Secure Boot's "
                    + "lockdown)"
                : "nothing the policies do needs config writes")
    }

    /// Seed 000's known issues: VFIO pins guest memory (RLIMIT_MEMLOCK), and many devices
    /// need many descriptors (RLIMIT_NOFILE), for each user the policies hand nodes to.
    func limits() -> [Finding] {
        let users = Set(policies.policies.compactMap { $0.owner?.id }).sorted()
        let conf =
            ([paths.under("/etc/security/limits.conf")]
            + ((try? io.list(paths.under("/etc/security/limits.d"))) ?? [])
            .filter { $0.hasSuffix(".conf") }.sorted().map { paths.under("/etc/security/limits.d/\($0)") }).compactMap(
                readFile
            ).joined(separator: "\n")
        return users.map { uid in
            let name = accounts[uid] ?? String(uid)
            // limits.conf names a user by name, or by uid as a range (`:1000` is uid 1000 alone).
            let domain = accounts[uid] ?? ":\(uid)"
            let memlock = limit(conf, for: accounts[uid], uid: uid, item: "memlock")
            let nofile = limit(conf, for: accounts[uid], uid: uid, item: "nofile")
            var problems: [String] = [], fixes: [String] = []
            if memlock != "unlimited" {
                problems.append("memlock is \(memlock ?? "the default (8 MiB)")")
                fixes.append("\(domain) hard memlock unlimited")
            }
            if let value = nofile.flatMap(Int.init), value >= 4096 {
            } else if nofile != "unlimited" {
                problems.append("nofile is \(nofile ?? "the default (1024)")")
                fixes.append("\(domain) hard nofile 8192")
            }
            if problems.isEmpty {
                return Finding(
                    status: .pass, subject: "limits for \(name)", message: "memlock unlimited, nofile \(nofile ?? "")")
            }
            return Finding(
                status: .warn, subject: "limits for \(name)",
                message: problems.joined(separator: ", ")
                    + "; VMs with passed-through devices fail to map DMA or open their devices",
                fix: "in /etc/security/limits.conf: " + fixes.joined(separator: ", ")
                    + " (or LimitMEMLOCK=/LimitNOFILE= in the VM's unit)")
        }
    }

    /// The hard limit for `item` that applies to the user (named `user`, or unnamed) of `uid`,
    /// as pam_limits picks it: a line for the user's name or a uid range holding it
    /// (`:1000`, `1000:`, `1000:2000`) wins over `*`.
    private func limit(_ conf: String, for user: String?, uid: UInt32, item: String) -> String? {
        var general: String?, specific: String?
        for line in conf.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 4, !fields[0].hasPrefix("#"), fields[2] == item,
                fields[1] == "hard" || fields[1] == "-"
            else { continue }
            if fields[0] == "*" {
                general = String(fields[3])
            } else if fields[0] == user ?? "" || Self.uidRange(fields[0])?.contains(uid) == true {
                specific = String(fields[3])
            }
        }
        return specific ?? general
    }

    /// limits.conf's `<min_uid>:<max_uid>`: a missing min matches max alone, a missing max
    /// every uid from min on.
    static func uidRange(_ domain: Substring) -> ClosedRange<UInt32>? {
        let parts = domain.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !(parts[0].isEmpty && parts[1].isEmpty) else { return nil }
        if parts[0].isEmpty { return UInt32(parts[1]).map { $0...$0 } }
        guard let low = UInt32(parts[0]) else { return nil }
        if parts[1].isEmpty { return low...UInt32.max }
        guard let high = UInt32(parts[1]), high >= low else { return nil }
        return low...high
    }

    // MARK: What the policies claim

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
    private func resets(_ device: PCIDevice, _ policy: Policy, subject: String, view: HostView) -> [Finding] {
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
