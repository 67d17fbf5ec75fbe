import Foundation
import Glibc
import HostInterface
@testable import AgentCommands
@testable import HotplugAgent
import Testing

/// hotplug-agent holds no simulator: `simulate`, `bench` and `--host` run in
/// hotplug-agent-lab, found beside it or in ../libexec/hotplug-agent/.
struct LabHandOverTests {
    static let seed000 = repository.appendingPathComponent("hosts/seed-000-mi300x.json").path
    static let seed000Policies = repository.appendingPathComponent("rules/examples/seed-000").path

    @Test func theLabIsLookedForBesideTheBinaryAndInLibexec() {
        #expect(
            LabElsewhere.candidates(besideExecutable: "/usr/bin/hotplug-agent")
                == ["/usr/bin/hotplug-agent-lab", "/usr/bin/../libexec/hotplug-agent/hotplug-agent-lab"])
        #expect(
            LabElsewhere.candidates(besideExecutable: "hotplug-agent") == [
                "./hotplug-agent-lab", "./../libexec/hotplug-agent/hotplug-agent-lab"
            ])
    }

    /// The daemon's binary has no simulated kernel in it: a command that needs one runs the lab.
    @Test func simulateAndHostRunInTheLab() throws {
        let simulated = try Binary.run(["simulate", "--host", Self.seed000, "--policy-dir", Self.seed000Policies])
        #expect(simulated.status == 0, "\(simulated.stderr)")
        #expect(simulated.stdout.contains("16 devices changed driver, 37 bridges untouched, 0 reconciles failed"))
        let listed = try Binary.run(["list", "--host", Self.seed000])
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(listed.stdout.contains("[1002:74a1]"))
    }

    /// Laid out as the package does (bin/ and libexec/hotplug-agent/), and alone.
    @Test func theLabIsFoundInLibexecAndItsAbsenceIsNamed() throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "hotplug-agent-lab-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let bin = directory.appendingPathComponent("bin"),
            libexec = directory.appendingPathComponent("libexec/hotplug-agent")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let agent = bin.appendingPathComponent("hotplug-agent").path
        try FileManager.default.copyItem(atPath: Binary.path, toPath: agent)

        let alone = try Binary.run(["simulate", "--host", Self.seed000], executable: agent)
        #expect(alone.status == 1)
        #expect(alone.stderr.contains("needs hotplug-agent-lab"))
        #expect(alone.stderr.contains("\(bin.path)/../libexec/hotplug-agent/hotplug-agent-lab"))
        #expect(alone.stdout.isEmpty)

        try FileManager.default.createDirectory(at: libexec, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: Binary.path + "-lab", toPath: libexec.appendingPathComponent("hotplug-agent-lab").path)
        let planned = try Binary.run(
            ["plan", "--host", Self.seed000, "--policy-dir", Self.seed000Policies], executable: agent)
        #expect(planned.status == 0, "\(planned.stderr)")
        #expect(planned.stdout.contains("vfio-pci"))
    }

    /// What needs no simulator never looks for the lab.
    @Test func theDaemonsCommandsNeedNoLab() throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "hotplug-agent-alone-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let agent = directory.appendingPathComponent("hotplug-agent").path
        try FileManager.default.copyItem(atPath: Binary.path, toPath: agent)
        let policy = directory.appendingPathComponent("50-gpu.toml")
        try "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:74a1\"]\ndriver = \"vfio-pci\"\nowner = \"0\"\n"
            .write(to: policy, atomically: true, encoding: .utf8)
        let checked = try Binary.run(["check", policy.path], executable: agent)
        #expect(checked.status == 0, "\(checked.stderr)")
        let version = try Binary.run(["--version"], executable: agent)
        #expect(version.stdout == "hotplug-agent \(hotplugAgentVersion)\n")
    }
}
