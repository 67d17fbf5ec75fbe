import Foundation
import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Policy
import Testing

/// CDI specs: every claimed device on a VFIO driver under `<policy>-<n>` and its address,
/// with the nodes of one API, gone from the spec as soon as it leaves VFIO.
struct CDITests {
    /// The GPUs under the default kind, the NICs under their own with iommufd nodes (the
    /// same file the CDI schema test validates the specs of).
    static let kinds = try! String(
        contentsOf: repository.appendingPathComponent("Tests/CDI/policies/50-kinds.toml"),
        encoding: .utf8)

    func specs(_ host: SimHost) throws -> [CDISpec] {
        host.agent.planner.cdiSpecs(in: try host.agent.plannedView())
    }

    func host(deviceNodes: Bool, policies: String = kinds) throws -> SimHost {
        var description = try SimHost.load("seed-000-mi300x.json")
        description.vfioDeviceNodes = deviceNodes
        return try SimHost(description, policies: policies)
    }

    @Test func seed000ListsEachClaimedDeviceUnderItsPolicyNameAndAddressWithTheGroupNodes() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        #expect(try specs(host).isEmpty, "nothing is on vfio-pci before the agent ran")
        #expect(host.runOnce())
        let all = try specs(host)
        #expect(all.count == 1)
        let spec = try #require(all.first)
        #expect(spec.kind.description == "hotplug-agent.io/vfio" && spec.fileName == "hotplug-agent.json")
        #expect(spec.devices.count == 32)
        let gpus = host.addresses { $0.id.device == 0x74a1 }
        for (n, address) in gpus.enumerated() {
            let named = spec.devices.filter { $0.name == "mi300x-\(n)" }
            #expect(named.count == 1 && named[0].address.description == address, "mi300x-\(n)")
            let byAddress = try #require(spec.devices.first { $0.name == address })
            #expect(byAddress.nodes == named[0].nodes)
            let group = try #require(host.device(address)?.group)
            #expect(
                byAddress.nodes == [
                    CDISpec.Node(path: "/dev/vfio/vfio", mode: 0o666),
                    CDISpec.Node(path: "/dev/vfio/\(group)", uid: 1000, gid: 993, mode: 0o660)
                ])
        }
        #expect(spec.devices.contains { $0.name == "connectx-7-7" })
        #expect(!spec.devices.contains { $0.name == "connectx-7-8" })
        #expect(!spec.devices.contains { $0.nodes.contains { $0.path == "/dev/iommu" } })
        // The file as runtimes read it.
        let text = CDISpecFiles.text(spec)
        #expect(text.hasPrefix("{\n  \"cdiVersion\" : \"0.5.0\",\n"))
        #expect(text.contains("\"path\" : \"/dev/vfio/vfio\"") && text.contains("\"fileMode\" : 432"))
        #expect(text.contains("\"kind\" : \"hotplug-agent.io/vfio\""))
    }

    @Test func aPolicysOwnKindAndIOMMUFDNodesWhereTheKernelHasThem() throws {
        let host = try host(deviceNodes: true)
        #expect(host.runOnce())
        let all = try specs(host)
        #expect(all.map(\.fileName) == ["hotplug-agent.json", "hotplug-agent.example.com.nic.json"])
        let nics = all[1]
        #expect(nics.kind.description == "example.com/nic" && nics.devices.count == 16)
        for device in nics.devices {
            let number = try #require(host.device(device.address.description)?.deviceNode)
            #expect(
                device.nodes == [
                    CDISpec.Node(path: "/dev/iommu", uid: 1000, gid: nil, mode: 0o660),
                    CDISpec.Node(path: "/dev/vfio/devices/vfio\(number)", uid: 1000, mode: 0o600)
                ])
        }
        // The GPUs' policy did not ask for iommufd: the legacy pair, never both.
        #expect(all[0].devices.allSatisfy { $0.nodes.map(\.path).first == "/dev/vfio/vfio" && $0.nodes.count == 2 })
    }

    @Test func iommufdFallsBackToTheGroupNodesOnAKernelWithoutDeviceNodes() throws {
        let host = try host(deviceNodes: false)
        #expect(host.runOnce())
        let nics = try #require(try specs(host).last)
        #expect(nics.devices.allSatisfy { $0.nodes.map(\.path).first == "/dev/vfio/vfio" })
    }

    @Test func aDeviceThatLeavesVFIOLeavesTheSpecAndTheOthersAreRenumbered() throws {
        let host = try host(deviceNodes: true)
        #expect(host.runOnce())
        let gpus = host.addresses { $0.id.device == 0x74a1 }
        host.kernel.unplug(PCIAddress(gpus[0])!)
        host.deliverEvents()
        var defaults = try #require(try specs(host).first)
        #expect(!defaults.devices.contains { $0.address.description == gpus[0] })
        #expect(defaults.devices.first { $0.name == "mi300x-0" }?.address.description == gpus[1])
        #expect(!defaults.devices.contains { $0.name == "mi300x-7" })
        // Unbound by hand from vfio-pci (an admin, another tool): out at once.
        try host.kernel.write("/sys/bus/pci/drivers/vfio-pci/unbind", gpus[1])
        defaults = try #require(try specs(host).first)
        #expect(!defaults.devices.contains { $0.address.description == gpus[1] })
        // The NIC that takes a freed vfioN number is listed under its new node.
        let nic = host.addresses { $0.id.device == 0x1021 }[0]
        host.kernel.unplug(PCIAddress(nic)!)
        host.deliverEvents()
        try host.plugAgain(nic)
        host.deliverEvents()
        let number = try #require(host.device(nic)?.deviceNode)
        let listed = try #require(try specs(host).last?.devices.first { $0.name == nic })
        #expect(listed.nodes.last?.path == "/dev/vfio/devices/vfio\(number)")
    }

    /// A policy that now wants another driver: the device is still on vfio-pci (a VM holds
    /// it), but it is on its way out, and no container is handed it meanwhile.
    @Test func aDeviceItsPolicyMovesElsewhereIsNotListedWhileItWaits() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        #expect(host.runOnce())
        let gpu = host.addresses { $0.id.device == 0x74a1 }[0]
        let group = try #require(host.device(gpu)?.group)
        host.kernel.holdNode(group, pid: 7, command: "qemu-system-x86")
        let moved = try SimHost.examplePolicy("seed-000").replacingOccurrences(
            of: "driver = \"vfio-pci\"\nsysfs",
            with: "driver = \"pci-stub\"\nsysfs")
        let accounts = TableAccounts(users: host.description.users ?? [:], groups: host.description.groups ?? [:])
        host.agent.planner = Planner(
            policies: PolicySet(PolicyParser(accounts: accounts).parse(moved, file: "m.toml").policies))
        #expect(!host.runOnce() || host.device(gpu)?.driver == "vfio-pci")
        #expect(host.device(gpu)?.driver == "vfio-pci")
        #expect(try specs(host).first?.devices.contains { $0.address.description == gpu } == false)
    }

    @Test func aPolicyNameCDIRefusesLeavesTheAddressAlone() throws {
        let host = try SimHost(
            "seed-000-mi300x.json",
            policies: """
                [[policy]]
                name = "_gpus"
                match.ids = ["1002:74a1"]
                driver = "vfio-pci"
                """)
        #expect(host.runOnce())
        let spec = try #require(try specs(host).first)
        #expect(spec.devices.count == 8 && spec.devices.allSatisfy { $0.name.hasPrefix("0000:") })
    }

    @Test func statusNamesEachDevicesCDINames() throws {
        let host = try host(deviceNodes: true)
        #expect(host.runOnce())
        let planner = host.agent.planner
        let snapshot = try host.reader.fullView()
        let view = host.reader.read(planner.needs(in: snapshot), into: snapshot)
        let statuses = DeviceStatus.all(
            planner.planAll(in: view), view: view, planner: planner,
            records: StatusStore(stateDirectory: host.state, writable: true),
            cdi: planner.cdiSpecs(in: view))
        let gpu = try #require(statuses.first { $0.policy == "mi300x" })
        #expect(gpu.cdi == ["hotplug-agent.io/vfio=mi300x-0", "hotplug-agent.io/vfio=\(gpu.address)"])
        #expect(statuses.first { $0.policy == "nics" }?.cdi.first == "example.com/nic=nics-0")
    }
}

/// The spec files: written when they change, removed when their kind has no device left.
struct CDISpecFileTests {
    func spec(_ kind: CDIKind = .default, devices: Int) -> CDISpec {
        CDISpec(
            kind: kind,
            devices: (0..<devices).map { n in
                CDISpec.Device(
                    name: "p-\(n)", address: PCIAddress("0000:0\(n):00.0")!,
                    nodes: [CDISpec.Node(path: "/dev/vfio/\(n)")])
            })
    }

    @Test func writtenOnceRemovedWhenEmptyAndOnlyOurs() throws {
        let tree = try FakeSysfs()
        let files = CDISpecFiles(directory: tree.path("/run/cdi"))
        let other = try CDIKind.parse("example.com/nic").get()
        #expect(files.update([spec(devices: 2), spec(other, devices: 1)]).isEmpty)
        #expect(try tree.read("/run/cdi/hotplug-agent.json").contains("\"name\" : \"p-1\""))
        #expect(try tree.read("/run/cdi/hotplug-agent.example.com.nic.json").contains("\"kind\" : \"example.com/nic\""))
        var st = stat()
        #expect(stat(tree.path("/run/cdi/hotplug-agent.json"), &st) == 0 && st.st_mode & 0o7777 == 0o644)
        let inode = st.st_ino
        // Unchanged: not written again.
        #expect(files.update([spec(devices: 2), spec(other, devices: 1)]).isEmpty)
        #expect(stat(tree.path("/run/cdi/hotplug-agent.json"), &st) == 0 && st.st_ino == inode)
        // Another producer's spec stays; ours go when no device is left.
        try tree.file("/run/cdi/nvidia.yaml", "cdiVersion: 0.5.0\n")
        #expect(files.update([]).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tree.path("/run/cdi")) == ["nvidia.yaml"])
    }

    /// Found by the attacker: `a_b/c` and `a/b_c` once shared a file (and a dictionary key:
    /// the daemon trapped); a host that cannot be read once left a returned device listed;
    /// a directory the writer accepts once refused the remover.
    @Test func kindsHaveFilesOfTheirOwnAndTheRemoverReachesWhatTheWriterWrote() throws {
        let one = try CDIKind.parse("a_b/c").get(), other = try CDIKind.parse("a/b_c").get()
        #expect(CDISpec.fileName(for: one) != CDISpec.fileName(for: other))
        let tree = try FakeSysfs()
        try tree.mkdir("/shared")
        chmod(tree.path("/shared"), 0o777)
        let files = CDISpecFiles(directory: tree.path("/shared"))
        #expect(files.update([spec(one, devices: 1), spec(other, devices: 1)]).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tree.path("/shared")).count == 2)
        #expect(files.update([]).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tree.path("/shared")).isEmpty)
        // The longest kind a policy may name still makes a file.
        let long = try CDIKind.parse(String(repeating: "v", count: 100) + "/" + String(repeating: "c", count: 99)).get()
        #expect(files.update([spec(long, devices: 1)]).isEmpty)
        let tooLong = String(repeating: "v", count: 101) + "/" + String(repeating: "c", count: 100)
        #expect(throws: PolicyMessage.self) { try CDIKind.parse(tooLong).get() }
    }

    /// Found by the second attacker: with --root, what the agent writes below the root by
    /// default (the CDI spec, its state) followed the root's links as the host's. Debian's
    /// `/var/run -> /run` inside an image led `run --once --root IMG` to the host's /run/cdi.
    @Test(.enabled(if: runningAsRoot, "the group node is a real character device"))
    func linksBelowTheRootResolveInsideIt() throws {
        let tree = try FakeSysfs(), outside = try FakeSysfs()
        try tree.device("0000:12:00.0", id: "1002:74a1", driver: "vfio-pci", group: 12)
        try tree.mkdir("/dev/vfio")
        try tree.characterNode("/dev/vfio/12")
        try tree.mkdir("/var")
        try tree.mkdir("/run")
        try tree.link("/var/run", to: "/run")  // as Debian has it
        try tree.link("/run/hotplug-agent", to: outside.path("/state"))  // absolute: inside the root
        try tree.mkdir("/p")
        try tree.file("/p/50.toml", "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:74a1\"]\ndriver = \"vfio-pci\"\n")
        let result = try Binary.run(["run", "--once", "--root", tree.root, "--policy-dir", tree.path("/p")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try tree.read("/run/cdi/hotplug-agent.json").contains("\"name\" : \"gpu-0\""))
        // A move that fails (this tree has no unbind file) leaves a status record in the state
        // directory: through its link, inside the root; and the spec, the device no longer
        // claimed for vfio-pci, goes through the same walk.
        try tree.file("/p/50.toml", "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:74a1\"]\ndriver = \"pci-stub\"\n")
        let failed = try Binary.run(["run", "--once", "--root", tree.root, "--policy-dir", tree.path("/p")])
        #expect(failed.status == 1, "\(failed.stderr)")
        #expect(FileManager.default.fileExists(atPath: tree.path(outside.path("/state/status/0000:12:00.0"))))
        #expect(!FileManager.default.fileExists(atPath: outside.path("/state")))
        #expect(!FileManager.default.fileExists(atPath: tree.path("/run/cdi/hotplug-agent.json")))
    }

    /// A device on vfio-pci whose group has no node (a group link to nowhere): a spec naming
    /// a node that is not there would fail the container, so it is not listed.
    @Test func aDeviceWithoutItsGroupNodeIsNotListed() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:12:00.0", id: "1002:74a1", driver: "vfio-pci", group: 12)
        try tree.mkdir("/dev/vfio")
        try tree.mkdir("/p")
        try tree.file("/p/50.toml", "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:74a1\"]\ndriver = \"vfio-pci\"\n")
        let result = try Binary.run(["cdi", "--root", tree.root, "--policy-dir", tree.path("/p")])
        #expect(result.status == 0 && !result.stdout.contains("gpu-0"), "\(result.stdout)")
    }

    /// Through the built binary on the real file layer: two GPUs on vfio-pci are listed;
    /// once a device between them cannot be read, the one before it keeps its numbered name
    /// and the one after it is listed by its address alone (its number could name another
    /// device once that one reads again). Names never shift.
    @Test(.enabled(if: runningAsRoot, "the group node is a real character device"))
    func aDeviceThatCannotBeReadLeavesTheNamesAfterItByAddressAlone() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/dev/vfio")
        for (address, group) in [("0000:03:00.0", 3), ("0000:12:00.0", 12)] {
            try tree.device(address, id: "1002:74a1", driver: "vfio-pci", group: group)
            try tree.characterNode("/dev/vfio/\(group)")
        }
        try tree.mkdir("/p")
        try tree.file("/p/50.toml", "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:74a1\"]\ndriver = \"vfio-pci\"\n")
        let run = [
            "run", "--once", "--root", tree.root, "--policy-dir", tree.path("/p"),
            "--state-dir", tree.path("/state")
        ]
        #expect(try Binary.run(run).status == 0)
        let spec = { try tree.read("/var/run/cdi/hotplug-agent.json") }
        let first = try spec()
        #expect(first.contains("\"name\" : \"gpu-0\"") && first.contains("\"name\" : \"gpu-1\""))
        try tree.device("0000:05:00.0", id: "8086:zz", class: "0x020000")
        let again = try Binary.run(run)
        #expect(
            again.stderr.contains("devices from 0000:05:00.0 on are listed by their address alone"), "\(again.stderr)")
        let written = try spec()
        #expect(written.contains("\"name\" : \"gpu-0\"") && written.contains("\"name\" : \"0000:12:00.0\""))
        #expect(!written.contains("gpu-1"), "\(written)")
        let cdi = try Binary.run(["cdi", "--root", tree.root, "--policy-dir", tree.path("/p")])
        #expect(cdi.status == 0 && cdi.stdout == written, "\(cdi.stdout)")
    }

    @Test func aStaleSpecFromAnEarlierRunGoesAndALinkInItsPlaceIsReplacedNotFollowed() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/run/cdi")
        try tree.file("/run/cdi/hotplug-agent.old.example_gone.json", "{}")
        try tree.file("/target", "precious")
        try tree.link("/run/cdi/hotplug-agent.json", to: tree.path("/target"))
        let files = CDISpecFiles(directory: tree.path("/run/cdi"))
        #expect(files.update([spec(devices: 1)]).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tree.path("/run/cdi")) == ["hotplug-agent.json"])
        #expect(try tree.read("/target") == "precious")
        var st = stat()
        #expect(lstat(tree.path("/run/cdi/hotplug-agent.json"), &st) == 0 && st.st_mode & S_IFMT == S_IFREG)
    }

    @Test func theDaemonKeepsTheSpecInStepWithTheHost() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        let tree = try FakeSysfs()
        var daemon = Daemon(agent: host.agent, monitor: host.kernel, log: host.agent.log) { PolicySet([]) }
        daemon.cdi = CDISpecFiles(directory: tree.path("/cdi"))
        let signals = SignalPipe(signals: [], installHandlers: false)
        startThread { [daemon] in _ = daemon.run(signals: signals) }
        defer { signals.send(SIGTERM) }
        let file = tree.path("/cdi/hotplug-agent.json")
        func spec() -> String { (try? String(contentsOfFile: file, encoding: .utf8)) ?? "" }
        #expect(waitFor(.seconds(10)) { spec().contains("\"name\" : \"connectx-7-7\"") })
        let gpu = host.addresses { $0.id.device == 0x74a1 }[0]
        host.kernel.unplug(PCIAddress(gpu)!)
        #expect(waitFor(.seconds(10)) { !spec().contains(gpu) && !spec().contains("mi300x-7") })
        // The policies go (a reload to none): every device returns, and the file with them.
        signals.send(SIGHUP)
        #expect(waitFor(.seconds(10)) { !FileManager.default.fileExists(atPath: file) }, "\(host.log.all.suffix(8))")
    }
    /// The daemon's specs come from the host as its last specs saw it, with what events
    /// named since read again: after removals, a hot-add, a hand unbind and a reload they
    /// are what a full look makes, and a settled event reads only its device's group, not
    /// the host.
    @Test func specsKeptFromEventsAreWhatAFullLookMakes() throws {
        let host = try CDITests().host(deviceNodes: true)
        #expect(host.runOnce())
        func full() throws -> [CDISpec] { try CDITests().specs(host) }
        func deliver() {
            while case let batch = host.kernel.drain(), !batch.events.isEmpty { host.agent.handle(batch) }
        }
        #expect(try host.agent.cdiSpecs() == full())
        let gpus = host.addresses { $0.id.device == 0x74a1 }, nics = host.addresses { $0.id.device == 0x1021 }
        // A GPU leaves: it goes, the later GPUs are renumbered.
        host.kernel.unplug(PCIAddress(gpus[0])!)
        deliver()
        #expect(try host.agent.cdiSpecs() == full())
        // It comes back, and is claimed again.
        try host.plugAgain(gpus[0])
        deliver()
        let back = try #require(host.agent.cdiSpecs())
        #expect(try back == full() && back.contains { $0.devices.contains { $0.address.description == gpus[0] } })
        // A NIC (iommufd: listed by its device node) leaves.
        host.kernel.unplug(PCIAddress(nics[0])!)
        deliver()
        let gone = try #require(host.agent.cdiSpecs())
        #expect(try gone == full() && !gone.contains { $0.devices.contains { $0.address.description == nics[0] } })
        // Another unbound by hand: the agent claims it again (a new device node number).
        try host.kernel.write("/sys/bus/pci/drivers/vfio-pci/unbind", nics[1])
        deliver()
        #expect(try host.agent.cdiSpecs() == full())
        // A reload to no policies: every device returns and the specs are empty.
        let policies = host.agent.planner
        host.agent.planner = Planner(policies: PolicySet([]))
        host.agent.reconcileAll()
        deliver()
        #expect(try host.agent.cdiSpecs() == full() && full().allSatisfy { $0.devices.isEmpty })
        // A settled device's event: the next specs read its group, not the whole host.
        host.agent.planner = policies
        host.agent.reconcileAll()
        deliver()
        _ = host.agent.cdiSpecs()
        let (agent, counting) = host.countingAgent()
        #expect(agent.cdiSpecs() == (try full()))
        counting.reset()
        agent.handle(
            (
                [
                    UEvent(
                        action: "change", subsystem: "pci", devpath: "/devices/\(gpus[1])",
                        properties: ["PCI_SLOT_NAME": gpus[1]])
                ], false
            ))
        counting.reset()
        #expect(agent.cdiSpecs() == (try full()))
        let looks = counting.operations.filter { $0.hasPrefix("dirread ") }
        #expect(looks.count <= 3, "\(looks)")
    }
    /// What a look could not read is read again by the next, event or not: a device that
    /// failed once (EIO) does not keep the specs away once it reads again.
    @Test func aDeviceThatCouldNotBeReadIsReadAgainByTheNextKeptLook() throws {
        let host = try CDITests().host(deviceNodes: false)
        #expect(host.runOnce())
        _ = host.kernel.drain()
        let gpus = host.addresses { $0.id.device == 0x74a1 }
        host.kernel.failReading("/sys/bus/pci/devices/\(gpus[1])")
        let partial = try #require(host.agent.cdiSpecs())
        #expect(!partial.contains { $0.devices.contains { $0.address.description == gpus[1] } })
        #expect(partial.contains { $0.devices.contains { $0.name == "mi300x-0" && $0.address.description == gpus[0] } })
        let unread = try #require(PCIAddress(gpus[1]))
        #expect(!partial.contains { $0.devices.contains { $0.name.hasPrefix("mi300x-") && $0.address > unread } })
        host.kernel.failReading("/sys/bus/pci/devices/\(gpus[1])", false)
        // An event for another device only.
        host.agent.handle(
            (
                [
                    UEvent(
                        action: "change", subsystem: "pci", devpath: "/devices/\(gpus[0])",
                        properties: ["PCI_SLOT_NAME": gpus[0]])
                ], false
            ))
        let specs = try #require(host.agent.cdiSpecs())
        #expect(try specs == CDITests().specs(host))
        #expect(specs.contains { $0.devices.contains { $0.address.description == gpus[1] } })
    }
}
