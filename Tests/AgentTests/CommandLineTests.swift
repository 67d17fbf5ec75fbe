import Foundation
import Glibc
import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Testing

/// Runs the built `hotplug-agent` as a user would.
struct Binary {
    static let path: String = {
        if let path = ProcessInfo.processInfo.environment["HOTPLUG_AGENT_BIN"] { return path }
        return repository.appendingPathComponent(".build/debug/hotplug-agent").path
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ arguments: [String], in directory: URL? = nil, executable: String = path) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }
}

struct CommandLineTests {
    static let corpus = repository.appendingPathComponent("Tests/PolicyTests/Corpus")
    static let badFiles =
        ((try? FileManager.default.contentsOfDirectory(atPath: corpus.appendingPathComponent("bad").path)) ?? [])
        .filter { $0.hasSuffix(".toml") }.sorted()

    @Test(arguments: badFiles)
    func checkPrintsEveryErrorOfABadFileAndExits1(name: String) throws {
        let tree = try FakeSysfs()
        let result = try Binary.run(["check", "--root", tree.root, "bad/\(name)"], in: Self.corpus)
        let expected = try String(
            contentsOf: Self.corpus.appendingPathComponent("bad/\(name.dropLast(5)).expected"), encoding: .utf8)
        #expect(result.status == 1)
        #expect(result.stdout == expected)
    }

    @Test func checkAcceptsTheGoodFilesAndTheExamples() throws {
        let tree = try FakeSysfs()
        let good = try Binary.run(
            ["check", "--root", tree.root, "good/spec-example.toml", "good/table-forms.toml", "good/empty.toml"],
            in: Self.corpus)
        #expect(good.status == 0)
        #expect(good.stdout == "ok: 7 policies\n")
        for seed in ["seed-000", "seed-003", "seed-004"] {
            let examples = repository.appendingPathComponent("rules/examples/\(seed)").path
            let result = try Binary.run(["check", "--root", tree.root, "--policy-dir", examples])
            #expect(result.status == 0, "\(seed): \(result.stdout)")
        }
    }

    @Test(arguments: badFiles)
    func runRefusesEachBadFileAndChangesNothing(name: String) throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:74a1", driver: "amdgpu", group: 3)
        let installed = tree.path("/etc/hotplug-agent/policies.d/\(name)")
        try tree.mkdir("/etc/hotplug-agent/policies.d")
        try FileManager.default.copyItem(
            atPath: Self.corpus.appendingPathComponent("bad/\(name)").path, toPath: installed)
        let expected = try String(
            contentsOf: Self.corpus.appendingPathComponent("bad/\(name.dropLast(5)).expected"), encoding: .utf8
        )
        .replacingOccurrences(of: "bad/\(name)", with: installed)
        for arguments in [["run", "--once"], ["run"], ["run", "--dry-run", "--once"], ["plan"]] {
            let result = try Binary.run(arguments + ["--root", tree.root])
            #expect(result.status == 1, "\(arguments)")
            #expect(result.stderr.hasPrefix(expected), "\(arguments): \(result.stderr)")
            #expect(result.stdout.isEmpty)
        }
        #expect(try tree.read("/sys/bus/pci/devices/0000:0b:00.0/driver_override") == "(null)\n")
        #expect(tree.stat("/sys/bus/pci/devices/0000:0b:00.0/driver").st_mode & S_IFMT == S_IFLNK)
        #expect(!FileManager.default.fileExists(atPath: tree.path("/sys/bus/pci/drivers_probe")))
    }

    /// Read-only commands on this machine's real PCI devices: they read them and write nothing.
    @Test func planAndListReadTheRealHostAndChangeNothing() throws {
        let devices = "/sys/bus/pci/devices"
        guard let addresses = try? FileManager.default.contentsOfDirectory(atPath: devices), !addresses.isEmpty else {
            return
        }
        func state() -> [String] {
            addresses.sorted().map { address in
                let driver =
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(devices)/\(address)/driver")) ?? "-"
                let override =
                    (try? String(contentsOfFile: "\(devices)/\(address)/driver_override", encoding: .utf8)) ?? "-"
                return "\(address) \(driver) \(override)"
            }
        }
        let before = state()
        let tree = try FakeSysfs()
        try tree.file(
            "/etc/everything.toml", "[[policy]]\nname = \"all\"\nmatch.ids = [\"*:*\"]\ndriver = \"vfio-pci\"\n")
        try tree.mkdir("/policies")
        try FileManager.default.moveItem(
            atPath: tree.path("/etc/everything.toml"), toPath: tree.path("/policies/all.toml"))
        let plan = try Binary.run(["plan", "--policy-dir", tree.path("/policies")])
        #expect(plan.status == 0)
        #expect(plan.stdout.split(separator: "\n").filter { !$0.hasPrefix(" ") }.count == addresses.count)
        let list = try Binary.run(["list", "--json"])
        #expect(list.status == 0)
        #expect(list.stdout.contains("\"address\""))
        #expect(state() == before)
    }

    /// doctor on this machine's real devices: without an IOMMU it fails that line with the
    /// fix and exits 1; with one, it passes it.
    @Test func doctorOnThisMachine() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/policies")
        let result = try Binary.run(["doctor", "--policy-dir", tree.path("/policies")])
        let groups = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/kernel/iommu_groups")) ?? []
        if groups.isEmpty {
            #expect(result.status == 1)
            #expect(result.stdout.hasPrefix("FAIL IOMMU: no IOMMU groups: the IOMMU is off"))
            #expect(result.stdout.contains("; fix: enable VT-d (Intel) or AMD-Vi/IOMMU (AMD) in the firmware"))
        } else {
            #expect(result.stdout.hasPrefix("PASS IOMMU: \(groups.count) IOMMU groups"))
        }
    }

    @Test(.enabled(if: runningAsRoot, "chown needs root"))
    func policyFilesAnyoneButRootCanChangeAreRefused() throws {
        let tree = try FakeSysfs()
        let directory = tree.path("/etc/hotplug-agent/policies.d")
        try tree.mkdir("/etc/hotplug-agent/policies.d")
        let policy = "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:74a1\"]\n"
        try tree.file("/etc/hotplug-agent/policies.d/10-user.toml", policy.replacingOccurrences(of: "gpu", with: "a"))
        try tree.file("/etc/hotplug-agent/policies.d/20-group.toml", policy.replacingOccurrences(of: "gpu", with: "b"))
        chown(directory + "/10-user.toml", 1000, 1000)
        chmod(directory + "/20-group.toml", 0o664)
        let result = try Binary.run(["check", "--root", tree.root])
        #expect(result.status == 1)
        #expect(
            result.stdout == """
                \(directory)/10-user.toml: file is not owned by root (owner uid 1000); refused
                \(directory)/20-group.toml: file is writable by group or others (mode 0664); refused

                """)
        chmod(directory, 0o777)
        let open = try Binary.run(["check", "--root", tree.root])
        #expect(open.stdout == "\(directory): directory is writable by group or others (mode 0777); refused\n")
    }

    @Test(.enabled(if: runningAsRoot, "chown needs root"))
    func everyDirectoryAboveAPolicyFileMustBeRootsUnlessSticky() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/srv/shared/policies")
        let file = tree.path("/srv/shared/policies/10-gpu.toml")
        try tree.file("/srv/shared/policies/10-gpu.toml", "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:74a1\"]\n")
        #expect(try Binary.run(["check", "--root", tree.root, file]).status == 0)
        // Whoever can rename entries in a directory above could swap the file for theirs.
        chmod(tree.path("/srv"), 0o777)
        let open = try Binary.run(["check", "--root", tree.root, file])
        #expect(open.status == 1)
        #expect(
            open.stdout
                == "\(file): directory \(tree.path("/srv")) above it is writable by group or others (mode 0777); "
                + "refused\n"
        )
        // The sticky bit (/tmp's) lets only an entry's owner rename it: passes.
        chmod(tree.path("/srv"), 0o1777)
        #expect(try Binary.run(["check", "--root", tree.root, file]).status == 0)
        chown(tree.path("/srv/shared"), 1000, 1000)
        let owned = try Binary.run(["check", "--root", tree.root, file])
        #expect(
            owned.stdout
                == "\(file): directory \(tree.path("/srv/shared")) above it is not owned by root (owner uid 1000); "
                + "refused\n"
        )
    }

    @Test func aFIFOInPlaceOfAPolicyFileIsRefusedWithoutHanging() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/p")
        mkfifo(tree.path("/p/10-fifo.toml"), 0o644)
        let result = try Binary.run(["check", "--root", tree.root, "--policy-dir", tree.path("/p")])
        #expect(result.status == 1)
        #expect(result.stdout == "\(tree.path("/p/10-fifo.toml")): not a regular file\n")
    }

    @Test func aRelativeRootIsTheWorkingDirectorysNeverTheRealRoot() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:74a1", group: 3)
        try tree.mkdir("/p")
        try tree.file("/p/10.toml", "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:74a1\"]\n")
        let parent = URL(fileURLWithPath: tree.root).deletingLastPathComponent()
        let name = URL(fileURLWithPath: tree.root).lastPathComponent
        // plan with --root relative to the working directory sees the tree's one device.
        let result = try Binary.run(["plan", "--root", name, "--policy-dir", "\(name)/p"], in: parent)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "0000:0b:00.0 [1002:74a1] class 030000, no driver: policy \"gpu\"\n")
        #expect(HostPaths(root: "sub/dir").root.hasPrefix("/") && HostPaths(root: "sub/dir").root.hasSuffix("/sub/dir"))
        #expect(HostPaths(root: "").root != "/" || absolutePath("") == "/")
        #expect(HostPaths(root: "").root == absolutePath(""))
        // Absolute by its first byte, as the kernel takes it: a `/` and a combining mark after
        // it are one character, not a `/`, and the root is not made relative.
        #expect(HostPaths(root: "/\u{301}tree").root == "/\u{301}tree")
        #expect(HostPaths(root: "/a/\u{301}b//.").root == "/a/\u{301}b")
    }

    /// A root named in bytes that are not UTF-8 is never read as its U+FFFD twin (a tree
    /// someone laid out beside it): as an argument it is refused before anything runs; as
    /// the working directory a relative root names nothing. Found by this round's attacker:
    /// `plan --root .` in `tree\xff` showed, and `run --once` wrote into, `tree\u{FFFD}`.
    @Test func aRootNamedInBytesThatAreNotUTF8IsNeverItsTwin() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:74a1", group: 3)
        try tree.mkdir("/twin\u{FFFD}")
        #expect(rename(tree.path("/sys"), tree.path("/twin\u{FFFD}/sys")) == 0)
        // The shell makes the bytes: Swift's arguments and paths are decoded strings.
        let bad = "\"$(printf 'twin\\377')\""
        let asArgument = try Binary.run(
            ["-c", "mkdir \(bad) && exec \"$0\" list --root \"$PWD\"/\(bad)", Binary.path],
            in: URL(fileURLWithPath: tree.root), executable: "/bin/sh")
        #expect(asArgument.status == 64 && asArgument.stderr.contains("argument 3 is not UTF-8"), "\(asArgument)")
        let asDirectory = try Binary.run(
            ["-c", "cd \(bad) && exec \"$0\" list --root .", Binary.path], in: URL(fileURLWithPath: tree.root),
            executable: "/bin/sh")
        #expect(asDirectory.status == 64 && asDirectory.stderr.contains("working directory cannot be named"))
        #expect(!asDirectory.stdout.contains("0000:0b:00.0"), "\(asDirectory)")
        // Nor a program to run as root, or systemd's socket, named in the environment.
        for variable in ["HOTPLUG_AGENT_MODPROBE", "NOTIFY_SOCKET"] {
            let named = try Binary.run(
                ["-c", "\(variable)=\"$PWD\"/\(bad) exec \"$0\" list --root \"$PWD\"", Binary.path],
                in: URL(fileURLWithPath: tree.root), executable: "/bin/sh")
            #expect(named.status == 64 && named.stderr.contains("\(variable) is not UTF-8"), "\(named)")
        }
    }

    @Test func etcMasksUsrLibAndFilesAreReadInNameOrder() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/etc/hotplug-agent/policies.d")
        try tree.mkdir("/usr/lib/hotplug-agent/policies.d")
        try tree.file("/usr/lib/hotplug-agent/policies.d/50-gpu.toml", "this is not toml")
        try tree.file(
            "/etc/hotplug-agent/policies.d/50-gpu.toml",
            "[[policy]]\nname = \"etc\"\nmatch.ids = [\"1002:74a1\"]\ndriver = \"pci-stub\"\n")
        try tree.file(
            "/usr/lib/hotplug-agent/policies.d/10-first.toml", "[[policy]]\nname = \"first\"\nmatch.class = [\"03\"]\n")
        try tree.device("0000:0b:00.0", id: "1002:74a1", group: 3)
        let result = try Binary.run(["plan", "--root", tree.root])
        #expect(result.status == 0)
        #expect(result.stdout == "0000:0b:00.0 [1002:74a1] class 030000, no driver: policy \"first\"\n")
    }

    @Test func planAndListReadTheTree() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:73bf", driver: "amdgpu", group: 20)
        try tree.device("0000:0b:00.1", id: "1002:ab28", class: "0x040300", driver: "snd_hda_intel", group: 20)
        try tree.device("0000:00:01.0", id: "1022:1483", class: "0x060400", driver: "pcieport")
        try tree.mkdir("/policies")
        try tree.file(
            "/policies/50.toml",
            "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:*\"]\ndriver = \"vfio-pci\"\nclaim-group = true\n")
        let plan = try Binary.run(["plan", "--root", tree.root, "--policy-dir", tree.path("/policies")])
        #expect(plan.status == 0)
        #expect(
            plan.stdout == """
                0000:00:01.0 [1022:1483] class 060400, driver pcieport: no policy
                0000:0b:00.0 [1002:73bf] class 030000, driver amdgpu: policy "gpu"
                  load module vfio-pci: driver vfio-pci is not registered
                  bind to vfio-pci (now on amdgpu): policy "gpu" wants vfio-pci
                0000:0b:00.1 [1002:ab28] class 040300, driver snd_hda_intel: policy "gpu"
                  load module vfio-pci: driver vfio-pci is not registered
                  bind to vfio-pci (now on snd_hda_intel): policy "gpu" wants vfio-pci

                """)
        let list = try Binary.run(["list", "--root", tree.root, "--policy-dir", tree.path("/policies")])
        // This tree's device directories are not links into /sys/devices: no topology, so
        // each bus is a root of its own.
        #expect(
            list.stdout == """
                pci0000:00
                └─ 0000:00:01.0 [1022:1483] 060400  pcieport
                pci0000:0b
                ├─ 0000:0b:00.0 [1002:73bf] 030000  amdgpu  group 20 (not viable now)  policy gpu
                └─ 0000:0b:00.1 [1002:ab28] 040300  snd_hda_intel  group 20 (not viable now)  policy gpu

                """)
        let json = try Binary.run(["list", "--json", "--root", tree.root])
        let decoded = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let groups = try #require(decoded?["groups"] as? [[String: Any]])
        #expect(groups.first?["group"] as? Int == 20 && groups.first?["viable"] as? Bool == false)
        #expect((decoded?["ungrouped"] as? [[String: Any]])?.first?["driver"] as? String == "pcieport")
    }
}
