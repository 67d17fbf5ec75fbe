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
        let host = try ChosenHost(global, policy, source, lab: Lab.self)
        let devices = VMArguments.devices(view: try host.reader.fullViewOrExit(), planner: host.planner)
        let text = VMArguments.render(devices, as: format, iommufd: iommufd)
        if !text.isEmpty { LineLogHandler.standardOutput(String(text.dropLast())) }
    }
}
