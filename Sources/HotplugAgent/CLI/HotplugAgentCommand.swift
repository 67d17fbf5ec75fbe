import ArgumentParser
import Glibc

@main
struct HotplugAgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hotplug-agent",
        abstract: "Claims PCI devices for VFIO as they appear, as the policies in /etc/hotplug-agent/policies.d say.",
        subcommands: [RunCommand.self, PlanCommand.self, ListCommand.self, CheckCommand.self, SimulateCommand.self, DoctorCommand.self, BootConfigCommand.self, VMArgsCommand.self, RecordCommand.self, BenchCommand.self, TOMLCheckCommand.self])

    static func main() {
        // A child that stops reading its input (the TOML check) must fail a write, not end us.
        signal(SIGPIPE, SIG_IGN)
        main(nil)
    }
}
