import Foundation
import HostInterface
@testable import AgentCommands
@testable import HotplugAgent
@testable import Simulation
import Testing

struct RecordTests {
    @Test func aRecordedTreeRunsInTheSimulator() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:73bf", driver: "amdgpu", group: 20)
        try tree.device("0000:0b:00.1", id: "1002:ab28", class: "0x040300", driver: "snd_hda_intel", group: 20)
        try tree.file("/sys/bus/pci/devices/0000:0b:00.0/reset_method", "flr bus\n")
        let recorded = try Binary.run(["record", "--root", tree.root])
        #expect(recorded.status == 0)
        let description = try JSONDecoder().decode(HostDescription.self, from: Data(recorded.stdout.utf8))
        #expect(description.devices.map(\.address) == ["0000:0b:00.0", "0000:0b:00.1"])
        #expect(description.devices[0].attributes?["reset_method"] == "flr bus")
        #expect(description.devices[0].iommuGroup == 20 && description.devices[0].driver == "amdgpu")
        #expect(description.users?["cloud"] == 1000 && description.groups?["kvm"] == 993)
        #expect(description.drivers.first { $0.name == "amdgpu" }?.ids == ["1002:73bf"])

        try tree.file("/host.json", recorded.stdout)
        try tree.mkdir("/policies")
        try tree.file(
            "/policies/50.toml",
            "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:73bf\"]\ndriver = \"vfio-pci\"\nclaim-group = true\nowner "
                + "= \"cloud\"\n"
        )
        let simulated = try Binary.run([
            "simulate", "--host", tree.path("/host.json"), "--policy-dir", tree.path("/policies")
        ])
        #expect(simulated.status == 0)
        #expect(simulated.stdout.contains("0000:0b:00.1 [1002:ab28]: snd_hda_intel -> vfio-pci (override vfio-pci)"))
        #expect(simulated.stdout.hasSuffix("2 devices changed driver, 0 bridges untouched, 0 reconciles failed\n"))
    }

    /// This machine's real devices, recorded read-only, then simulated with a seed policy
    /// (the accounts the policy names added, as an admin modelling a target host would).
    @Test func thisMachineRecordedRunsEndToEnd() throws {
        let recorded = try Binary.run(["record"])
        #expect(recorded.status == 0)
        var description = try JSONDecoder().decode(HostDescription.self, from: Data(recorded.stdout.utf8))
        #expect(!description.devices.isEmpty)
        description.users?["cloud"] = 1000
        description.groups?["kvm"] = 993
        let tree = try FakeSysfs()
        try tree.file("/host.json", String(decoding: try JSONEncoder().encode(description), as: UTF8.self))
        let simulated = try Binary.run([
            "simulate", "--host", tree.path("/host.json"),
            "--policy-dir", repository.appendingPathComponent("rules/examples/seed-000").path
        ])
        #expect(simulated.status == 0, "\(simulated.stderr)")
        #expect(simulated.stdout.contains("== End state"))
    }
}

/// A record keeps what SR-IOV needs: which drivers make VFs, so that simulate predicts
/// the VFs a real run would make (found on a real kernel: it predicted none).
/// A host description is a regular file of reasonable size: a FIFO, a directory or a
/// huge file is refused at once, with a message a person can read.
struct HostFileTests {
    @Test func whatIsNoHostDescriptionIsRefusedAtOnce() throws {
        let tree = try FakeSysfs()
        mkfifo(tree.path("/fifo.json"), 0o600)
        try tree.mkdir("/directory.json")
        try tree.file("/huge.json", "")
        truncate(tree.path("/huge.json"), off_t(SimulatedKernel.maxHostFileBytes + 1))
        try tree.file("/text.json", "not json\n")
        let cases = [("/fifo.json", "not a regular file"), ("/directory.json", "not a regular file"),
                     ("/huge.json", "larger than 64 MiB"), ("/text.json", "not a host description"),
                     ("/missing.json", "cannot open: No such file or directory (ENOENT)")]
        for (file, says) in cases {
            #expect(throws: HostFileError.self) { try SimulatedKernel.load(tree.path(file)) }
            do { _ = try SimulatedKernel.load(tree.path(file)) } catch {
                #expect("\(error)".hasPrefix(says), "\(file): \(error)")
            }
        }
    }
}

struct RecordSRIOVTests {
    @Test func theDriversOfSRIOVPFsAreRecordedAsMakingVFsButPCIStubIsNot() throws {
        let host = try SimHost("seed-002-flex.json", policies: "")
        let recorder = HostRecorder(reader: host.reader, readFile: { _ in nil })
        let description = try recorder.record()
        #expect(description.drivers.first { $0.name == "i915" }?.sriov == true)
        #expect(recorder.canConfigureSRIOV("pci-stub") == false)
        #expect(recorder.canConfigureSRIOV("vfio-pci") == false)
        // Simulated on the record, seed 002's policies make and claim its four VFs.
        var recorded = description
        recorded.users = ["vmuser": 1000]
        recorded.groups = ["kvm": 993]
        let replay = try SimHost(recorded, policies: try SimHost.examplePolicy("seed-002"))
        #expect(replay.runOnce())
        #expect(replay.addresses { $0.physfn != nil && $0.driver == "vfio-pci" }.count == 4)
    }
}
