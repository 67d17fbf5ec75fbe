import HostInterface
import ArgumentParser
import Glibc

/// The release, as `--version` prints it.
let hotplugAgentVersion = "0.4.0"

package struct HotplugAgentCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "hotplug-agent",
        abstract: "Claims PCI devices for VFIO as they appear, as the policies in /etc/hotplug-agent/policies.d say.",
        version: "hotplug-agent \(hotplugAgentVersion)",
        subcommands: [RunCommand.self, PlanCommand.self, StatusCommand.self, ListCommand.self, CheckCommand.self, SimulateCommand.self, DoctorCommand.self, BootConfigCommand.self, VMArgsCommand.self, CDICommand.self, RecordCommand.self, ReloadCommand.self, BenchCommand.self])

    package init() {}

    /// Parses the command line and runs the command: the `main` of both executables.
    package static func start() {
        // A reader that goes away (a child, a closed pipe) must fail a write, not end us.
        signal(SIGPIPE, SIG_IGN)
        // Signals a parent left blocked would never reach the daemon's handlers (SIGHUP,
        // SIGTERM): start with none blocked, before any thread inherits the mask.
        var none = sigset_t()
        sigemptyset(&none)
        sigprocmask(SIG_SETMASK, &none, nil)
        main(nil)
    }
}
