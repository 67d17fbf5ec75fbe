import HotplugAgent
import HostInterface
import ArgumentParser
import Policy

struct DoctorCommand<Lab: Laboratory>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "doctor", abstract: "Check the host's readiness for VFIO and for what the policies claim.")
    }

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policy: PolicyOptions
    @OptionGroup var source: HostSourceOptions

    func run() throws {
        let host = try ChosenHost(global, policy, source, lab: Lab.self)
        let simulated = host.simulated
        let doctor = Doctor(
            reader: host.reader, policies: host.policies, readFile: { simulated ? nil : try? readTextFile($0) },
            accounts: accountNames(host.policies, host.accounts))
        let findings = doctor.run()
        for finding in findings { output(escapingControlCharacters("\(finding)")) }
        if findings.contains(where: { $0.status == .fail }) { throw ExitCode(1) }
    }
}

/// uid → the name a policy used for it, or else the host's name for it, for messages.
func accountNames(_ policies: PolicySet, _ accounts: any AccountResolver) -> [UInt32: String] {
    var names: [UInt32: String] = [:]
    for policy in policies.policies {
        guard let owner = policy.owner else { continue }
        names[owner.id] = owner.name ?? names[owner.id] ?? accounts.userName(of: owner.id)
    }
    return names
}
