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
        let host = HostContext(global)
        let (reader, accounts) = try source.open(host, lab: Lab.self)
        let planner = Planner(policies: try host.policiesOrExit(policy, accounts: accounts))
        let snapshot = try reader.fullViewOrExit()
        let view = reader.read(planner.needs(in: snapshot), into: snapshot)
        let specs = planner.cdiSpecs(in: view)
        // With no device claimed the daemon keeps no file; its spec would have no devices.
        let shown = specs.isEmpty ? [CDISpec(kind: .default, devices: [])] : specs
        output(String(shown.map(CDISpecFiles.text).joined().dropLast()))
    }
}
