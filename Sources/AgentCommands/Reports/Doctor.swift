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
        // In bytes, as pam_limits reads it: a `\r\n` still ends a line, a name is its bytes.
        for line in conf.split(byte: UInt8(ascii: "\n")) {
            let fields = line.utf8.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }).map {
                Substring($0)
            }
            guard fields.count >= 4, !fields[0].hasPrefix("#"), fields[2] == item,
                fields[1] == "hard" || fields[1] == "-"
            else { continue }
            if fields[0] == "*" {
                general = String(fields[3])
            } else if fields[0].utf8.elementsEqual((user ?? "").utf8) || Self.uidRange(fields[0])?.contains(uid) == true
            {
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
}
