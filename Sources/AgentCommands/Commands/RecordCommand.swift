import HotplugAgent
import HostInterface
import ArgumentParser
import FoundationEssentials
import Policy

struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record", abstract: "Print a JSON snapshot of the host's PCI devices, for simulate --host.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let host = HostContext(global)
        let description: HostDescription
        do {
            description = try HostRecorder(reader: host.reader, readFile: { try? readTextFile($0) }).record()
        } catch {
            LineLogHandler.error("hotplug-agent: cannot read the host: \(error)")
            throw ExitCode(1)
        }
        output(prettyJSON(description))
    }
}
