import HotplugAgent
import HostInterface
import ArgumentParser
import Glibc

/// The release, as `--version` prints it.
let hotplugAgentVersion = "0.5.0"

package struct HotplugAgentCommand<Lab: Laboratory>: ParsableCommand {
    package static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "hotplug-agent",
            abstract:
                "Claims PCI devices for VFIO as they appear, as the policies in /etc/hotplug-agent/policies.d say.",
            version: "hotplug-agent \(hotplugAgentVersion)",
            subcommands: [
                RunCommand.self, PlanCommand<Lab>.self, StatusCommand.self, ListCommand<Lab>.self, CheckCommand.self,
                SimulateCommand<Lab>.self, DoctorCommand<Lab>.self, BootConfigCommand<Lab>.self,
                VMArgsCommand<Lab>.self, CDICommand<Lab>.self, RecordCommand.self, ReloadCommand.self,
                BenchCommand<Lab>.self
            ])
    }

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
        // What names a file must name that file: not its U+FFFD twin (see each check).
        if let index = argumentNotUTF8() {
            Self.exit(withError: ValidationError("argument \(index) is not UTF-8: it would name another file"))
        }
        if let name = variableNotUTF8() {
            Self.exit(withError: ValidationError("\(name) is not UTF-8: it would name another file"))
        }
        if workingDirectory() == nil {
            Self.exit(
                withError: ValidationError(
                    "the working directory cannot be named (removed, or named in bytes that are not UTF-8): "
                        + "a relative path would name another file"))
        }
        main(nil)
    }

    /// The first argument (from 1) whose bytes are not UTF-8. Swift hands arguments over
    /// decoded, each bad byte a U+FFFD, so `--root /srv/tree\xff` would name the directory
    /// `/srv/tree\u{FFFD}`, another one: refused before anything is parsed.
    static func argumentNotUTF8() -> Int? {
        (1..<Int(CommandLine.argc)).first { index in
            CommandLine.unsafeArgv[index].map { String(validatingCString: $0) == nil } ?? false
        }
    }
}
