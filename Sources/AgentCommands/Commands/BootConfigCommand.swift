import HotplugAgent
import HostInterface
import ArgumentParser
import Glibc
import Policy

struct BootConfigCommand<Lab: Laboratory>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "boot-config",
            abstract:
                "Print (or --write) the kernel arguments, modprobe.d and initramfs lines that keep host drivers off "
                    + "claimed devices from boot."
        )
    }

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policy: PolicyOptions
    @OptionGroup var source: HostSourceOptions

    @Flag(help: "Write the files for this distribution family under the root, and say what to run next.")
    var write = false

    func run() throws {
        let chosen = try ChosenHost(global, policy, source, lab: Lab.self)
        let host = chosen.context, planner = chosen.planner
        let view = try chosen.plannedView()
        // The CPU of this host, or the one its record names.
        let platform =
            chosen.description.map(\.cpu)
            ?? (try? readTextFile(host.paths.under("/proc/cpuinfo"))).flatMap(CPUPlatform.init(cpuinfo:))
        let config = BootConfig(view: view, planner: planner, platform: platform)
        guard write else {
            output(config.text)
            return
        }
        guard !chosen.simulated else {
            LineLogHandler.error("hotplug-agent: --write writes this host's files; it does not go with --host")
            throw ExitCode(1)
        }
        for line in try BootConfigWriter(paths: host.paths).write(config) { output(line) }
    }
}

/// Writes boot configuration for the distribution family /etc/os-release names.
struct BootConfigWriter {
    let paths: HostPaths

    enum Family { case debian, redHat, other }

    /// A file the writer acts on (what it keeps of it is written back), read as root reads
    /// what it acts on: through the trusted walk below the root, so that a link in the tree
    /// to this host's own files resolves inside it (found by this round's attacker: the
    /// tree's `modules` linked to the host's `/etc/shadow` was read and written into the tree,
    /// world-readable), and a file another user could change is refused; "" where there is
    /// none.
    func existing(_ path: String) throws(ValidationError) -> String {
        switch TrustedPath.read(paths.under(path), root: paths.root) {
        case .success(.bytes(let bytes)): return String(decoding: bytes, as: UTF8.self)
        case .success(.masked): return ""
        case .failure(let refusal) where refusal.isMissing: return ""
        case .failure(let refusal): throw ValidationError("\(path): \(refusal.message); nothing written there")
        }
    }

    var family: Family {
        let release = (try? existing("/etc/os-release")) ?? ""
        let words = release.split(separator: "\n").filter { $0.hasPrefix("ID=") || $0.hasPrefix("ID_LIKE=") }
            .flatMap { $0.split(separator: "=").last!.filter { $0 != "\"" }.split(separator: " ") }
        if words.contains(where: { ["debian", "ubuntu"].contains($0) }) { return .debian }
        if words.contains(where: { ["fedora", "rhel", "centos", "suse", "opensuse"].contains($0) }) { return .redHat }
        return .other
    }

    /// Writes the files; returns what it wrote and what the admin runs next.
    func write(_ config: BootConfig) throws -> [String] {
        var said: [String] = []
        func put(_ path: String, _ text: String) throws {
            try writeFileAtomically(paths.under(path), text, root: paths.root)
            said.append("wrote \(path)")
        }
        try put("/etc/modprobe.d/hotplug-agent.conf", config.modprobeConf)
        switch family {
        case .debian:
            try put("/etc/default/grub.d/hotplug-agent.cfg", config.grubSnippet)
            let modules = paths.under("/etc/initramfs-tools/modules")
            let existing = try existing("/etc/initramfs-tools/modules")
            let missing = BootConfig.initramfsModules.filter { module in
                !existing.split(separator: "\n").contains { $0 == module }
            }
            if !missing.isEmpty {
                let text =
                    existing + (existing.isEmpty || existing.hasSuffix("\n") ? "" : "\n")
                    + missing.joined(separator: "\n") + "\n"
                try writeFileAtomically(modules, text, root: paths.root)
                said.append("added \(missing.joined(separator: " ")) to /etc/initramfs-tools/modules")
            }
            said.append("next: update-initramfs -u && update-grub, then reboot")
        case .redHat:
            try put("/etc/dracut.conf.d/hotplug-agent.conf", config.dracutConf)
            said.append(
                "next: dracut -f && grubby --update-kernel=ALL "
                    + "--args=\"\(config.kernelArguments.joined(separator: " "))\", then reboot"
            )
        case .other:
            said.append(
                "next: add to the kernel command line: \(config.kernelArguments.joined(separator: " ")); regenerate "
                    + "the initramfs with \(BootConfig.initramfsModules.joined(separator: " "))"
            )
        }
        return said
    }
}
