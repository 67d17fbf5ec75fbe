import HotplugAgent
import HostInterface
import ArgumentParser
import Policy

/// The CDI specs for the devices the policies claim that are on a VFIO driver now, as the
/// daemon keeps them in `/var/run/cdi`: one JSON document per kind, the default kind's first.
struct CDICommand<Lab: Laboratory>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "cdi", abstract: "Print the CDI spec for the claimed devices that are on a VFIO driver now.")
    }

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policy: PolicyOptions
    @OptionGroup var source: HostSourceOptions

    func run() throws {
        let host = try ChosenHost(global, policy, source, lab: Lab.self)
        // A device left out is named on stderr; the devices after it are listed by address alone.
        let specs = host.planner.cdiSpecs(in: try host.plannedView())
        // With no device claimed the daemon keeps no file; its spec would have no devices.
        let shown = specs.isEmpty ? [CDISpec(kind: .default, devices: [])] : specs
        output(String(shown.map(CDISpecFiles.text).joined().dropLast()))
    }
}
