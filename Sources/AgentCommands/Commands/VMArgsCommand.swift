import HotplugAgent
import HostInterface
import ArgumentParser
import Policy

extension VMArguments.Format: ExpressibleByArgument {}

struct VMArgsCommand<Lab: Laboratory>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "vm-args",
            abstract: "Print the claimed devices that are on a VFIO driver now, as a VMM's arguments.")
    }

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policy: PolicyOptions
    @OptionGroup var source: HostSourceOptions

    @Option(help: "qemu, cloud-hypervisor or libvirt.")
    var format: VMArguments.Format

    @Flag(help: "With --format qemu: open the devices through iommufd (/dev/iommu and their device nodes).")
    var iommufd = false

    func validate() throws {
        if iommufd && format != .qemu { throw ValidationError("--iommufd goes with --format qemu") }
    }

    func run() throws {
        let host = HostContext(global)
        let (reader, accounts) = try source.open(host, lab: Lab.self)
        let planner = Planner(policies: try host.policiesOrExit(policy, accounts: accounts))
        let view = try reader.fullViewOrExit()
        let text = VMArguments.render(VMArguments.devices(view: view, planner: planner), as: format, iommufd: iommufd)
        if !text.isEmpty { LineLogHandler.standardOutput(String(text.dropLast())) }
    }
}
