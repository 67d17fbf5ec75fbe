import Foundation
import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Policy
import Testing

/// `status`: where each device a policy matches stands, from sysfs and the state directory.
struct StatusTests {
    func statuses(_ host: SimHost) throws -> [String: DeviceStatus] {
        let snapshot = try host.reader.fullView()
        let view = host.reader.read(host.agent.planner.needs(in: snapshot), into: snapshot)
        let entries = DeviceStatus.all(
            host.agent.planner.planAll(in: view), view: view, planner: host.agent.planner,
            records: StatusStore(stateDirectory: host.state, writable: true))
        return Dictionary(uniqueKeysWithValues: entries.map { ($0.address, $0) })
    }

    @Test func settledWaitingRefusedAndFailedEachWithTheirReason() throws {
        let host = try SimHost(
            "seed-000-mi300x.json",
            policies: """
                [[policy]]
                name = "gpus"
                match.ids = ["1002:74a1"]
                driver = "vfio-pci"
                owner = "cloud"
                [[policy]]
                name = "disk"
                match.slots = ["0000:04:00.0"]
                driver = "vfio-pci"
                [[policy]]
                name = "nics"
                match.ids = ["15b3:1021"]
                driver = "vfio-pci"
                """)
        let unreconciled = try statuses(host)
        #expect(unreconciled["0000:12:00.0"]?.state == "waiting")
        #expect(unreconciled["0000:12:00.0"]?.reason == "not done yet: load module vfio-pci")
        host.kernel.injectProbeFailure(PCIAddress("0000:13:00.0")!, "vfio-pci", .EIO)
        #expect(!host.runOnce())
        let after = try statuses(host)
        let gpu = try #require(after["0000:12:00.0"])
        #expect(
            gpu.state == "settled" && gpu.driver == "vfio-pci" && gpu.wants == "vfio-pci" && gpu.node == "1000:0 0600"
                && gpu.origin == "none")
        #expect(gpu.line == "0000:12:00.0 [gpus] on vfio-pci (wants vfio-pci), node 1000:0 0600, from none: settled")
        let disk = try #require(after["0000:04:00.0"])
        #expect(
            disk.state == "refused"
                && disk.reason?.hasPrefix(
                    "unbind nvme: the host uses it: block device nvme0n1p1 is mounted on /boot/efi") == true
        )
        let nic = try #require(after["0000:13:00.0"])
        #expect(
            nic.state == "failed"
                && nic.reason?.hasPrefix("bind to vfio-pci (now on mlx5_core): 0000:13:00.0 did not bind to vfio-pci")
                    == true,
            "\(nic)")
        // A device whose VM holds it, with its policy changed: waiting, with the holder.
        let group = try #require(host.device("0000:12:00.0")?.group)
        host.kernel.holdNode(group, pid: 42, command: "qemu-system-x86")
        let stub = PolicyParser(accounts: TableAccounts(users: [:], groups: [:])).parse(
            """
            [[policy]]
            name = "stub"
            match.ids = ["1002:74a1"]
            driver = "pci-stub"
            """, file: "p.toml")
        host.agent.planner = Planner(policies: PolicySet(stub.policies))
        let held = try #require(try statuses(host)["0000:12:00.0"])
        #expect(
            held.state == "waiting"
                && held.reason?.contains("/dev/vfio/\(group) is open by qemu-system-x86 (pid 42)") == true)
    }

    /// A failure's record outlives the agent that wrote it, and goes once the device settles
    /// under the next one: the records are listed once at start, then kept in step.
    @Test func aRecordLeftByAnEarlierAgentGoesWhenTheDeviceSettles() throws {
        let policy = "[[policy]]\nname = \"nics\"\nmatch.ids = [\"15b3:1021\"]\ndriver = \"vfio-pci\"\n"
        let host = try SimHost("seed-000-mi300x.json", policies: policy)
        let nic = PCIAddress("0000:13:00.0")!
        host.kernel.injectProbeFailure(nic, "vfio-pci", .EIO)
        #expect(!host.runOnce())
        let record = host.state + "/status/\(nic)"
        #expect(access(record, F_OK) == 0)
        host.kernel.injectProbeFailure(nic, "vfio-pci", nil)
        let next = try host.restarted(policies: policy)
        #expect(next.runOnce(events: host.kernel))
        #expect(host.device(nic.description)?.driver == "vfio-pci")
        #expect(access(record, F_OK) != 0)
    }

    /// What sysfs shows settles a device: a failure recorded before it settled (by another
    /// run beside the daemon, whose store kept its listing and never removed the record)
    /// is an old one. Found by this round's attacker: `status` said failed, exit 3, for a
    /// device on the driver its policy wants.
    @Test func aDeviceWithNothingLeftToDoIsSettledWhateverItsRecordSays() throws {
        let policy = "[[policy]]\nname = \"nics\"\nmatch.ids = [\"15b3:1021\"]\ndriver = \"vfio-pci\"\n"
        let host = try SimHost("seed-000-mi300x.json", policies: policy)
        let nic = PCIAddress("0000:13:00.0")!
        #expect(host.runOnce())
        StatusStore(stateDirectory: host.state, writable: true).record(nic, .failed("bind to vfio-pci: EIO"))
        #expect(try statuses(host)[nic.description]?.state == "settled")
        // A hung write is not over whatever sysfs shows (found by the next attacker).
        StatusStore(stateDirectory: host.state, writable: true).record(nic, .stuck("a write has not returned"))
        #expect(try statuses(host)[nic.description]?.state == "waiting")
        // With work left, a failure's record says why.
        StatusStore(stateDirectory: host.state, writable: true).record(nic, .failed("bind to vfio-pci: EIO"))
        host.kernel.injectProbeFailure(nic, "vfio-pci", .EIO)
        try host.kernel.write("/sys/bus/pci/devices/\(nic)/driver/unbind", nic.description)
        #expect(try statuses(host)[nic.description]?.state == "failed")
    }

    /// Under systemd the daemon writes its records as its dynamic user while `status` runs
    /// as root: they are shown, read through the trusted walk (which trusts the unit's
    /// dynamic user below the directory systemd handed it), only as regular files, never
    /// through a link that user planted and never blocking on a FIFO.
    @Test(.enabled(if: runningAsRoot, "chown needs root"))
    func recordsTheDaemonsDynamicUserWroteAreShownToRoot() throws {
        let tree = try FakeSysfs()
        let store = StatusStore(stateDirectory: tree.path("/run/hotplug-agent"), writable: true)
        let nic = PCIAddress("0000:13:00.0")!, gpu = PCIAddress("0000:12:00.0")!
        store.record(nic, .failed("bind to vfio-pci: EBUSY"))
        chown(tree.path("/run/hotplug-agent"), 61_234, 61_234)
        chown(tree.path("/run/hotplug-agent/status"), 61_234, 61_234)
        chown(tree.path("/run/hotplug-agent/status/\(nic)"), 61_234, 61_234)
        let asRoot = StatusStore(stateDirectory: tree.path("/run/hotplug-agent"), writable: true)
        #expect(asRoot.load(nic) == .failed("bind to vfio-pci: EBUSY"))
        mkfifo(tree.path("/run/hotplug-agent/status/\(gpu)"), 0o644)
        #expect(store.load(gpu) == nil)
        unlink(tree.path("/run/hotplug-agent/status/\(gpu)"))
        try tree.link("/run/hotplug-agent/status/\(gpu)", to: tree.path("/run/hotplug-agent/status/\(nic)"))
        lchown(tree.path("/run/hotplug-agent/status/\(gpu)"), 61_234, 61_234)
        #expect(store.load(gpu) == nil)
        // Nor a link higher up: the status directory swapped for one to a root-only place.
        try tree.mkdir("/secret")
        chmod(tree.path("/secret"), 0o700)
        try tree.file("/secret/\(gpu)", "failed SECRET\n")
        rename(tree.path("/run/hotplug-agent/status"), tree.path("/run/hotplug-agent/old"))
        try tree.link("/run/hotplug-agent/status", to: tree.path("/secret"))
        lchown(tree.path("/run/hotplug-agent/status"), 61_234, 61_234)
        #expect(store.load(gpu) == nil)
    }

    /// A record written in the directory handed to the unit's dynamic user is removed from
    /// it too, by root as by that user: the store lists and unlinks as it writes and reads.
    /// Found by this round's attacker: `run --once` beside the unit left its "failed" record,
    /// and `status` said failed (exit 3) for a device long settled.
    @Test(.enabled(if: runningAsRoot, "chown needs root"))
    func aRecordInTheDynamicUsersDirectoryIsClearedByRoot() throws {
        let tree = try FakeSysfs()
        let nic = PCIAddress("0000:13:00.0")!
        try tree.mkdir("/run/hotplug-agent")
        chown(tree.path("/run/hotplug-agent"), 61_234, 61_234)
        let store = StatusStore(stateDirectory: tree.path("/run/hotplug-agent"), writable: true)
        store.record(nic, .failed("bind to vfio-pci: EBUSY"))
        #expect(store.load(nic) == .failed("bind to vfio-pci: EBUSY"))
        StatusStore(stateDirectory: tree.path("/run/hotplug-agent"), writable: true).clear(nic)
        #expect(store.load(nic) == nil, "a settled device's failure was left")
    }

    /// `status` (and `plan`) say origin records they do not believe, as the daemon does:
    /// the device then shows no driver it came from, and an admin should know why. A
    /// directory not to be believed is said once, not once per device.
    @Test(.enabled(if: runningAsRoot, "chown needs root"))
    func anOriginRecordNotBelievedIsSaid() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:73bf", driver: "vfio-pci", group: 20)
        try tree.device("0000:0c:00.0", id: "1002:73bf", driver: "vfio-pci", group: 21)
        try tree.mkdir("/p")
        try tree.file("/p/10.toml", "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:73bf\"]\ndriver = \"vfio-pci\"\n")
        try tree.mkdir("/run/hotplug-agent/origins")
        try tree.file("/run/hotplug-agent/origins/0000:0b:00.0", "driver=amdgpu\noverride=\nmoved-to=vfio-pci\n")
        chown(tree.path("/run/hotplug-agent/origins"), 1000, 1000)
        for command in ["status", "plan"] {
            let result = try Binary.run([command, "--root", tree.root, "--policy-dir", tree.path("/p")])
            let said = result.stderr.split(separator: "\n").filter { $0.contains("not believed") }
            #expect(
                said.count == 1
                    && said[0].contains(
                        "where devices came from is not believed: \(tree.path("/run/hotplug-agent/origins"))"),
                "\(command): \(result.stderr)")
        }
    }

    /// A user who may not read the state directory (`plan` as nobody) is not told its
    /// records are not believed: they are root's, 0700, and nobody's business.
    @Test(.enabled(if: runningAsRoot && access("/usr/bin/setpriv", X_OK) == 0, "setpriv, as root"))
    func aUserWhoMayNotReadTheStateIsNotWarned() throws {
        let tree = try FakeSysfs()
        chmod(tree.root, 0o755)
        try tree.device("0000:0b:00.0", id: "1002:73bf", driver: "vfio-pci", group: 20)
        try tree.mkdir("/p")
        try tree.file("/p/10.toml", "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:73bf\"]\ndriver = \"vfio-pci\"\n")
        try tree.mkdir("/run/hotplug-agent/origins")
        try tree.file("/run/hotplug-agent/origins/0000:0b:00.0", "driver=amdgpu\noverride=\nmoved-to=vfio-pci\n")
        chmod(tree.path("/run/hotplug-agent"), 0o700)
        let result = try Binary.run(
            [
                "--reuid=65534", "--regid=65534", "--clear-groups", Binary.path, "plan", "--root", tree.root,
                "--policy-dir", tree.path("/p")
            ], executable: "/usr/bin/setpriv")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stderr.contains("not believed"), "\(result.stderr)")
    }

    @Test func theCommandExits3UntilEverythingSettlesAndPlanJSONHasTheSameDecisions() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:73bf", driver: "amdgpu", group: 20)
        try tree.mkdir("/sys/bus/pci/drivers/vfio-pci")
        try tree.mkdir("/p")
        try tree.file("/p/10.toml", "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:73bf\"]\ndriver = \"vfio-pci\"\n")
        let status = try Binary.run(["status", "--root", tree.root, "--policy-dir", tree.path("/p")])
        #expect(status.status == 3)
        #expect(
            status.stdout
                == "0000:0b:00.0 [gpu] on amdgpu (wants vfio-pci): waiting: not done yet: bind to vfio-pci (now on "
                + "amdgpu)\n"
        )
        let json = try Binary.run(["status", "--json", "--root", tree.root, "--policy-dir", tree.path("/p")])
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(entries.first?["state"] as? String == "waiting" && entries.first?["policy"] as? String == "gpu")
        let plan = try Binary.run(["plan", "--json", "--root", tree.root, "--policy-dir", tree.path("/p")])
        #expect(plan.status == 0)
        let planned = try #require(try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])
        let device = try #require((planned["devices"] as? [[String: Any]])?.first)
        #expect(device["address"] as? String == "0000:0b:00.0" && device["policy"] as? String == "gpu")
        let decisions = try #require(device["decisions"] as? [[String: String]])
        #expect(
            decisions.first == [
                "kind": "step", "what": "bind to vfio-pci (now on amdgpu)", "reason": "policy \"gpu\" wants vfio-pci"
            ])
        try tree.file("/p/10.toml", "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:73bf\"]\ndriver = \"amdgpu\"\n")
        let settled = try Binary.run(["status", "--root", tree.root, "--policy-dir", tree.path("/p")])
        #expect(settled.status == 0)
        #expect(settled.stdout == "0000:0b:00.0 [gpu] on amdgpu (wants amdgpu): settled\n")
    }
}
