import HotplugAgent
import HostInterface
import ArgumentParser
import Policy

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Validate policy files; print every error as FILE[:LINE]: message.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policy: PolicyOptions

    @Argument(help: "Policy files to check (besides any --policy-dir).")
    var files: [String] = []

    func run() throws {
        let paths = HostPaths(root: global.root)
        // Named files alone are checked alone; with neither, the default directories.
        let directories = policy.chosen ?? (files.isEmpty ? nil : [])
        let (policies, errors, masked) = PolicyLoader(paths: paths, accounts: HostAccounts(paths: paths))
            .load(directories: directories, files: files)
        for error in errors { output("\(error)") }
        if !errors.isEmpty { throw ExitCode(1) }
        // A masked file is read as none: say so, or "0 policies" hides why.
        let note =
            masked.isEmpty
            ? "" : " (masked, read as none: \(masked.map(escapingControlCharacters).joined(separator: ", ")))"
        output("ok: \(policies.policies.count) \(policies.policies.count == 1 ? "policy" : "policies")\(note)")
    }
}
