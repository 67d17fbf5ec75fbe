import Foundation
import Glibc
import HostInterface
@testable import HotplugAgent
import Policy
import Synchronization
import Testing

/// A policy file is trusted only when nobody but root could have changed it or any
/// directory on the way to it, the directories holding each link followed included, as
/// systemd's chase() with CHASE_SAFE judges; and only a regular file is ever opened.
struct TrustedPathTests {
    static let policy = "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:74a1\"]\n"

    /// `..` never climbs above the root, however the root is spelled: by its identity,
    /// not its name (`/a//t0` once led a relative link out of the tree).
    @Test func dotDotStopsAtTheRootHoweverItIsSpelled() throws {
        let tree = try FakeSysfs()
        let outside = try FakeSysfs()
        try outside.file("/passwd", "cloud:x:4242:4242::/:/bin/sh\n")
        let depth = tree.root.split(separator: "/").count + 2
        unlink(tree.path("/etc/passwd"))
        try tree.link("/etc/passwd", to: String(repeating: "../", count: depth) + outside.path("/passwd").dropFirst())
        let slashes = tree.root.replacingOccurrences(of: "/", with: "//")
        for root in [tree.root, slashes, tree.root + "/.", tree.root + "/"] {
            #expect(TrustedPath.text(tree.path("/etc/passwd"), root: root) == nil, "root \(root)")
            #expect(HostAccounts(paths: HostPaths(root: root)).userID(named: "cloud") == nil, "root \(root)")
        }
        #expect(HostPaths(root: slashes + "/./").root == tree.root)
        // Outside any root, the same link leads where it says.
        #expect(TrustedPath.text(tree.path("/etc/passwd"))?.hasPrefix("cloud:") == true)
    }

    /// Under a root, the accounts a policy names come from its etc/passwd and etc/group,
    /// read as the policies are: one another user could rewrite names nobody.
    /// Paths are split on the `/` byte, as the kernel splits them: as characters, a name that
    /// begins with a combining mark joins the `/` before it, and the directory before it was
    /// opened in one `openat` with the name, never judged (nor a link there refused).
    @Test func aNameBeginningWithACombiningMarkDoesNotHideTheDirectoryBeforeIt() throws {
        let tree = try FakeSysfs()
        let name = "\u{301}gpu.toml"
        try tree.mkdir("/etc/hotplug-agent/policies.d")
        let path = tree.path("/etc/hotplug-agent/policies.d/" + name)
        // Made in bytes: Foundation splits the path as characters too.
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        #expect(fd >= 0 && write(fd, "[[policy]]\n", 11) == 11)
        close(fd)
        guard case .success(.bytes(let bytes)) = TrustedPath.read(path) else {
            Issue.record("a trusted file was refused")
            return
        }
        #expect(bytes == Array("[[policy]]\n".utf8))
        chmod(tree.path("/etc/hotplug-agent/policies.d"), 0o777)
        guard case .failure(let refusal) = TrustedPath.read(path) else {
            Issue.record("read through a directory anyone may write")
            return
        }
        #expect(refusal.message.contains("writable by group or others"), "\(refusal.message)")
        // A link on the way is refused too, however the name after it begins.
        chmod(tree.path("/etc/hotplug-agent/policies.d"), 0o755)
        #expect(symlink(tree.path("/etc/hotplug-agent/policies.d"), tree.path("/etc/hotplug-agent/p")) == 0)
        if case .success = TrustedPath.read(tree.path("/etc/hotplug-agent/p/" + name), owners: .root) {
        } else {
            Issue.record("a root-owned link was not followed")
        }
    }

    /// An absolute link resolves below `--root`, reached as any path is: every directory on
    /// the way to the root judged, never the root opened by its path (a directory above it
    /// anyone may write, and the root could be a link of anyone's by then).
    @Test(.enabled(if: runningAsRoot, "chown needs root"))
    func anAbsoluteLinkReachesTheRootThroughJudgedDirectoriesOnly() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/open/root/etc")
        try tree.mkdir("/other/etc")
        try tree.mkdir("/policies")
        try tree.file("/open/root/etc/p.toml", "mine\n")
        try tree.file("/other/etc/p.toml", "theirs\n")
        try tree.link("/policies/10.toml", to: "/etc/p.toml")
        let root = tree.path("/open/root"), file = tree.path("/policies/10.toml")
        guard case .success(.bytes(let bytes)) = TrustedPath.read(file, root: root) else {
            Issue.record("a root's own file behind a root's link was refused")
            return
        }
        #expect(bytes == Array("mine\n".utf8))
        // Anyone may now rename the root away and put a link of theirs in its place.
        chmod(tree.path("/open"), 0o777)
        #expect(rename(root, tree.path("/open/old")) == 0)
        #expect(symlink(tree.path("/other"), root) == 0)
        #expect(lchown(root, 65534, 65534) == 0)
        guard case .failure(let refusal) = TrustedPath.read(file, root: root) else {
            Issue.record("read through a root replaced by another user's link")
            return
        }
        #expect(
            refusal.message.contains("writable by group or others") || refusal.message.contains("not owned by root"))
    }

    /// A link whose target is not UTF-8 is refused: decoded, its bytes would name another
    /// file (U+FFFD in their place), which the walk would open where the kernel would not.
    @Test func aLinkWhoseTargetIsNotUTF8IsRefused() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/p")
        try tree.file("/p/x\u{fffd}.toml", "decoded\n")
        let target = (Array(tree.path("/p/x").utf8) + [0xFF] + Array(".toml".utf8) + [0]).map { CChar(bitPattern: $0) }
        #expect(symlink(target, tree.path("/p/10.toml")) == 0)
        guard case .failure(let refusal) = TrustedPath.read(tree.path("/p/10.toml")) else {
            Issue.record("a file the link does not name was read")
            return
        }
        #expect(refusal.message.contains("not UTF-8"), "\(refusal.message)")
    }

    @Test func accountsUnderARootAreReadOnlyFromFilesRootAloneCouldChange() throws {
        let tree = try FakeSysfs()
        try tree.file("/etc/passwd", "root:x:0:0::/root:/bin/sh\ncloud:x:1000:1000::/home/cloud:/bin/sh\n")
        try tree.file("/etc/group", "root:x:0:\nkvm:x:993:cloud\n")
        let accounts = HostAccounts(paths: HostPaths(root: tree.root))
        #expect(accounts.userID(named: "cloud") == 1000 && accounts.groupID(named: "kvm") == 993)
        #expect(accounts.userName(of: 1000) == "cloud")
        // Names are their bytes, as NSS compares them: canonically equal spellings are two users.
        try tree.file(
            "/etc/passwd",
            "root:x:0:0::/root:/bin/sh\ncloud:x:1000:1000::/home/cloud:/bin/sh\ncaf\u{e9}:x:1001:1001::/:/bin/sh\n"
                + "cafe\u{301}:x:1002:1002::/:/bin/sh\nKevin:x:1003:1003::/:/bin/sh\n")
        #expect(accounts.userID(named: "cafe\u{301}") == 1002 && accounts.userID(named: "caf\u{e9}") == 1001)
        #expect(accounts.userID(named: "\u{212a}evin") == nil)
        chmod(tree.path("/etc/passwd"), 0o666)
        chmod(tree.path("/etc"), 0o777)
        #expect(accounts.userID(named: "cloud") == nil && accounts.userName(of: 1000) == nil)
        #expect(accounts.groupID(named: "kvm") == nil)
        // The policy naming them says why, not only that the user is unknown.
        let parsed = PolicyParser(accounts: accounts).parse(
            "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:74a1\"]\nowner = \"cloud\"\n", file: "p.toml")
        #expect(
            parsed.errors.map(\.description) == [
                "p.toml:4: owner: unknown user \"cloud\" (\(tree.path("/etc/passwd")): directory \(tree.path("/etc")) "
                    + "above it is writable by group or others (mode 0777); refused)"
            ])
    }

    @Test(.enabled(if: runningAsRoot, "chown needs root"))
    func aLinkInADirectoryAnotherUserOwnsIsRefusedThoughItsTargetIsRoots() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/p")
        try tree.mkdir("/home/cloud")
        try tree.mkdir("/srv/real")
        try tree.file("/srv/real/50.toml", Self.policy)
        try tree.link("/home/cloud/50.toml", to: "/srv/real/50.toml")
        try tree.link("/p/50.toml", to: "/home/cloud/50.toml")
        #expect(try Binary.run(["check", "--root", tree.root, "--policy-dir", tree.path("/p")]).status == 0)
        // cloud may now swap the link for anything: /dev/null, a device node, a file of theirs.
        chown(tree.path("/home/cloud"), 1000, 1000)
        let result = try Binary.run(["check", "--root", tree.root, "--policy-dir", tree.path("/p")])
        #expect(result.status == 1)
        #expect(
            result.stdout
                == "\(tree.path("/p/50.toml")): directory \(tree.path("/home/cloud")) above it is not owned by root "
                + "(owner uid 1000); refused\n"
        )
    }

    @Test(.enabled(if: runningAsRoot, "chown needs root"))
    func aLinkAnotherUserOwnsInAStickyDirectoryIsRefused() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/p")
        try tree.mkdir("/shared")
        chmod(tree.path("/shared"), 0o1777)
        try tree.file("/p/real.toml", Self.policy)
        try tree.link("/shared/50.toml", to: "/p/real.toml")
        try tree.link("/p/50.toml", to: "/shared/50.toml")
        let file = tree.path("/p/50.toml")
        #expect(try Binary.run(["check", "--root", tree.root, file]).status == 0)
        lchown(tree.path("/shared/50.toml"), 1000, 1000)
        let result = try Binary.run(["check", "--root", tree.root, file])
        #expect(
            result.stdout
                == "\(file): link \(tree.path("/shared/50.toml")) on the way is not owned by root (owner uid 1000); "
                + "refused\n"
        )
    }

    @Test(.enabled(if: runningAsRoot, "mknod needs root"))
    func aDeviceNodeOrFIFOBehindALinkIsRefusedUnopened() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/p")
        // /dev/zero's numbers: /dev/null's would mask the file, as systemd's units do.
        #expect(mknod(tree.path("/node"), S_IFCHR | 0o600, dev_t((1 << 8) | 5)) == 0)
        mkfifo(tree.path("/fifo"), 0o644)
        try tree.link("/p/10.toml", to: "/node")
        try tree.link("/p/20.toml", to: "/fifo")
        let result = try Binary.run(["check", "--root", tree.root, "--policy-dir", tree.path("/p")])
        #expect(result.status == 1)
        #expect(
            result.stdout
                == "\(tree.path("/p/10.toml")): not a regular file\n\(tree.path("/p/20.toml")): not a regular file\n")
    }

    @Test func aLinkToDevNullMasksAndALinkLoopIsRefused() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/etc/hotplug-agent/policies.d")
        try tree.mkdir("/usr/lib/hotplug-agent/policies.d")
        try tree.file("/usr/lib/hotplug-agent/policies.d/50.toml", "not toml")
        try tree.link("/etc/hotplug-agent/policies.d/50.toml", to: "/dev/null")
        #expect(try Binary.run(["check", "--root", tree.root]).status == 0)
        // /dev/null however it is written or reached, as systemd's masking takes it.
        for (name, target) in [("20.toml", "//dev/../dev/null"), ("30.toml", "/etc/null-link")] {
            try tree.file("/usr/lib/hotplug-agent/policies.d/\(name)", "not toml")
            try tree.link("/etc/hotplug-agent/policies.d/\(name)", to: target)
        }
        try tree.link("/etc/null-link", to: "/dev/null")
        let masked = try Binary.run(["check", "--root", tree.root])
        #expect(masked.status == 0, "\(masked.stdout)")
        // Said, or "0 policies" hides why.
        let etc = tree.path("/etc/hotplug-agent/policies.d")
        #expect(
            masked.stdout == "ok: 0 policies (masked, read as none: \(etc)/20.toml, \(etc)/30.toml, \(etc)/50.toml)\n",
            "\(masked.stdout)")
        try tree.link("/etc/hotplug-agent/policies.d/60.toml", to: "60.toml")
        let loop = try Binary.run(["check", "--root", tree.root])
        #expect(
            loop.stdout
                == "\(tree.path("/etc/hotplug-agent/policies.d/60.toml")): cannot resolve "
                + "\(tree.path("/etc/hotplug-agent/policies.d/60.toml")): \(Errno.ELOOP)\n"
        )
    }

    @Test func aFileNameThatIsNotUTF8IsRefusedByName() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/p")
        let name = tree.path("/p/b").utf8 + [0xff, 0xfe] + ".toml".utf8
        let created = (name.map { CChar(bitPattern: $0) } + [0]).withUnsafeBufferPointer {
            creat($0.baseAddress!, 0o644)
        }
        #expect(created >= 0)
        close(created)
        let result = try Binary.run(["check", "--root", tree.root, "--policy-dir", tree.path("/p")])
        #expect(result.status == 1)
        #expect(result.stdout == "\(tree.path("/p/b"))\\xff\\xfe.toml: a file name that is not UTF-8; refused\n")
    }

    @Test func relativeLinksAndDotDotResolveAsTheKernelWould() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/p")
        try tree.mkdir("/q/r")
        try tree.file("/q/50.toml", Self.policy)
        try tree.link("/p/50.toml", to: "../q/r/../50.toml")
        let result = try Binary.run(["plan", "--root", tree.root, "--policy-dir", tree.path("/p")])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        if case .success(.file(let fd, _)) = TrustedPath.openFile(tree.path("/p/50.toml")) {
            var st = stat(), real = stat()
            fstat(fd, &st)
            stat(tree.path("/q/50.toml"), &real)
            close(fd)
            #expect(st.st_ino == real.st_ino)
        } else {
            Issue.record("the file did not open")
        }
    }
}

/// Records root acts on (where a device came from, which ACL entries to take back) are read
/// through the same primitive: one another user could have planted is not believed.
struct TrustedRecordTests {
    /// The kept descriptor is used only while it holds the directory at its path: after an
    /// admin's `mv` of the directory, records are written into and removed from the one at
    /// the path (a record left there would put back, after a restart, a device the agent
    /// never moved), never the renamed one; and a record another agent wrote is removed too.
    @Test func originRecordsFollowTheDirectoryAtItsPath() throws {
        let tree = try FakeSysfs()
        let addresses = try (0xb...0xe).map { try #require(PCIAddress("0000:\(hex($0, width: 2)):00.0")) }
        let store = OriginStore(stateDirectory: tree.path("/state"), writable: true)
        let origin = DriverOrigin(driver: "amdgpu", override: nil, movedTo: "vfio-pci")
        try store.save(addresses[0], origin)
        try store.save(addresses[1], origin)
        #expect(rename(tree.path("/state/origins"), tree.path("/state/origins.old")) == 0)
        try tree.mkdir("/state/origins")
        for address in addresses[0...1] {
            try tree.link("/state/origins/\(address)", to: OriginStore.text(of: origin))
        }
        store.remove(addresses[0])
        try store.save(addresses[2], origin)
        let names = { (directory: String) in
            Set(((try? FileManager.default.contentsOfDirectory(atPath: tree.path(directory))) ?? []))
        }
        #expect(names("/state/origins") == ["\(addresses[1])", "\(addresses[2])"])
        #expect(names("/state/origins.old") == ["\(addresses[0])", "\(addresses[1])"])
        // Another agent's record (`run --once` beside the daemon) goes with its device.
        _ = store.sweep(keeping: Set(addresses))
        try OriginStore(stateDirectory: tree.path("/state"), writable: true).save(addresses[3], origin)
        store.remove(addresses[3])
        #expect(names("/state/origins") == ["\(addresses[1])", "\(addresses[2])"])
    }

    /// A record kept for another card is judged again as it is now before it goes: the
    /// card's own, written since by another agent (`run --once` beside the daemon), stays.
    @Test func aRecordKeptForAnotherCardIsReadAgainBeforeItGoes() throws {
        let tree = try FakeSysfs()
        let address = try #require(PCIAddress("0000:13:00.0"))
        let (old, new) = (try #require(PCIID("15b3:1021")), try #require(PCIID("15b3:101d")))
        let daemon = OriginStore(stateDirectory: tree.path("/state"), writable: true)
        try daemon.save(address, DriverOrigin(driver: "mlx5_core", override: nil, movedTo: "vfio-pci", device: old))
        let theirs = DriverOrigin(driver: "mlx5_core", override: nil, movedTo: "vfio-pci", device: new)
        try OriginStore(stateDirectory: tree.path("/state"), writable: true).save(address, theirs)
        #expect(daemon.load(address, of: new) == theirs)
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(address) == theirs)
        // And one still written for the old card goes, for the new one, once said.
        let said = Locked<[String]>([])
        let store = OriginStore(stateDirectory: tree.path("/state"), writable: true) { _, why in
            said.withLock { $0.append(why) }
        }
        #expect(store.load(address, of: old) == nil && store.load(address, of: old) == nil)
        #expect(said.withLock { $0 }.count == 1)
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(address) == nil)
    }

    /// A descriptor replaced because its directory went (an admin's `rm -r`, a tool that
    /// makes the state afresh) is closed once no write uses it: the daemon kept each one open
    /// until it stopped, and after some thousand replacements (the unit's default limit of
    /// descriptors) could neither read a device nor reload. Found by this round's attacker.
    @Test func aReplacedOriginDirectoryLeavesNoDescriptorOpen() throws {
        let tree = try FakeSysfs()
        let store = OriginStore(stateDirectory: tree.path("/state"), writable: true)
        let origin = DriverOrigin(driver: "amdgpu", override: nil, movedTo: "vfio-pci")
        let addresses = try (0x10...0x30).map { try #require(PCIAddress("0000:\(hex($0, width: 2)):00.0")) }
        func heldOnRemoved() -> Int {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
            return names.count { name in
                let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(name)")
                return target.map { $0.hasPrefix(tree.path("/state/origins")) && $0.hasSuffix("(deleted)") } ?? false
            }
        }
        for address in addresses {
            try store.save(address, origin)
            #expect(unlink(tree.path("/state/origins/\(address)")) == 0 && rmdir(tree.path("/state/origins")) == 0)
        }
        try store.save(addresses[0], origin)
        #expect(heldOnRemoved() == 0)
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(addresses[0]) == origin)
        store.remove(addresses[0])
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(addresses[0]) == nil)
    }

    /// The store keeps its directory open for writing: one removed meanwhile is made again
    /// (the record lands in the new one, not in the removed one's descriptor), and after the
    /// sweep has listed it, a device it did not list has no record.
    @Test func theOriginDirectoryKeptOpenIsMadeAgainWhenRemoved() throws {
        let tree = try FakeSysfs()
        let (first, second) = (try #require(PCIAddress("0000:0b:00.0")), try #require(PCIAddress("0000:0c:00.0")))
        let store = OriginStore(stateDirectory: tree.path("/state"), writable: true)
        let origin = DriverOrigin(driver: "amdgpu", override: nil, movedTo: "vfio-pci")
        try store.save(first, origin)
        #expect(unlink(tree.path("/state/origins/\(first)")) == 0 && rmdir(tree.path("/state/origins")) == 0)
        try store.save(second, origin)
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(second) == origin)
        #expect(tree.stat("/state/origins").st_mode & 0o7777 == 0o700)

        let third = try #require(PCIAddress("0000:0d:00.0"))
        #expect(store.sweep(keeping: [first, second, third]).isEmpty)
        try tree.file("/state/origins/\(third)", "driver=ice\noverride=\nmoved-to=vfio-pci\n")
        #expect(store.load(third) == nil, "the agent is the directory's only writer")
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(third)?.driver == "ice")
    }

    /// A record is the target of a link named for the device: made in one call where there
    /// is none, renamed over the old one otherwise; whatever stands at the name (a link
    /// planted to a file of root's, an older version's file) is replaced, never followed.
    @Test func originRecordsAreLinksThatReplaceWhatIsThereWithoutFollowingIt() throws {
        let tree = try FakeSysfs()
        let address = try #require(PCIAddress("0000:0b:00.0"))
        let record = "/state/origins/\(address)"
        let store = OriginStore(stateDirectory: tree.path("/state"), writable: true)
        let first = DriverOrigin(driver: "amdgpu", override: nil, movedTo: "vfio-pci")
        try store.save(address, first)
        #expect(tree.stat(record).st_mode & S_IFMT == S_IFLNK)
        #expect(
            try FileManager.default.destinationOfSymbolicLink(atPath: tree.path(record))
                == "driver=amdgpu\noverride=\nmoved-to=vfio-pci\n")
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(address) == first)

        try tree.file("/victim", "root's\n")
        #expect(unlink(tree.path(record)) == 0)
        try tree.link(record, to: tree.path("/victim"))
        let second = DriverOrigin(driver: "ice", override: "pci-stub", movedTo: "vfio-pci")
        try store.save(address, second)
        #expect(try tree.read("/victim") == "root's\n")
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(address) == second)

        #expect(unlink(tree.path(record)) == 0)
        try tree.file(record, "driver=amdgpu\noverride=\nmoved-to=vfio-pci\n")
        #expect(
            OriginStore(stateDirectory: tree.path("/state"), writable: true).load(address) == first,
            "an older version's file")
        try store.save(address, second)
        #expect(tree.stat(record).st_mode & S_IFMT == S_IFLNK)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tree.path("/state/origins")) == ["\(address)"])

        let directory = try openDirectoryForWriting(tree.path("/state/origins"), mode: 0o700)
        defer { close(directory) }
        for text in ["", "a\u{0}b", String(repeating: "x", count: Int(PATH_MAX))] {
            #expect(throws: IOFailure.self) {
                try writeRecordAtomically("0000:0c:00.0", in: directory, shown: "origins", text)
            }
        }
    }

    /// The link is the record: one another user made (or was given) is not believed.
    @Test(.enabled(if: runningAsRoot, "lchown needs root"))
    func aRecordLinkOfAnotherUsersIsNotBelieved() throws {
        let tree = try FakeSysfs()
        let address = try #require(PCIAddress("0000:0b:00.0"))
        let said = Mutex<[String]>([])
        let store = OriginStore(stateDirectory: tree.path("/state"), writable: true) { _, why in
            said.withLock { $0.append(why) }
        }
        try OriginStore(stateDirectory: tree.path("/state"), writable: true)
            .save(address, DriverOrigin(driver: "amdgpu", override: nil, movedTo: "vfio-pci"))
        lchown(tree.path("/state/origins/\(address)"), 1000, 1000)
        #expect(store.load(address) == nil)
        #expect(
            said.withLock { $0 } == [
                "\(tree.path("/state/origins/\(address)")): record link is not owned by root (owner uid 1000); refused"
            ])
    }

    /// A record that is not believed is said, with why, not dropped in silence: the device
    /// is then one the agent will not put back, which an admin should know.
    @Test(.enabled(if: runningAsRoot, "chown needs root"))
    func anOriginRecordNotBelievedIsSaidWithWhy() throws {
        let tree = try FakeSysfs()
        let address = try #require(PCIAddress("0000:0b:00.0"))
        try tree.mkdir("/state/origins")
        let said = Mutex<[String]>([])
        func store() -> OriginStore {
            OriginStore(stateDirectory: tree.path("/state"), writable: true) { device, why in
                said.withLock { $0.append("\(device.map { "\($0)" } ?? "-") \(why)") }
            }
        }
        #expect(store().load(address) == nil)
        #expect(said.withLock { $0 }.isEmpty, "a device with no record is not refused")
        try tree.file("/state/origins/\(address)", "driver=../../x\noverride=\nmoved-to=vfio-pci\n")
        #expect(store().load(address) == nil)
        #expect(
            said.withLock { $0 } == [
                "\(address) \(tree.path("/state/origins/\(address)")): not a record the agent writes"
            ])
        try tree.file("/state/origins/\(address)", "driver=amdgpu\noverride=\nmoved-to=vfio-pci\n")
        chown(tree.path("/state/origins"), 1000, 1000)
        #expect(store().load(address) == nil)
        // A directory not to be believed is said once, of no device.
        let directory = tree.path("/state/origins")
        #expect(
            said.withLock { $0.count } == 2
                && said.withLock { $0[1] }.hasPrefix("- \(directory): directory is not owned by root"),
            "\(said.withLock { $0 })")
    }

    @Test(.enabled(if: runningAsRoot, "chown needs root"))
    func anOriginRecordAnotherUserCouldPlantIsNotBelieved() throws {
        let tree = try FakeSysfs()
        let address = try #require(PCIAddress("0000:0b:00.0"))
        try tree.mkdir("/state/origins")
        try tree.file("/state/origins/\(address)", "driver=amdgpu\noverride=\nmoved-to=vfio-pci\n")
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(address)?.driver == "amdgpu")
        // Whoever owns the directory could have written "driver=their-choice".
        chown(tree.path("/state/origins"), 1000, 1000)
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(address) == nil)
        // The daemon's dynamic user, whom systemd (root) handed the runtime directory, wrote it:
        // root's commands (status, boot-config) believe it, as the daemon itself does.
        chown(tree.path("/state"), 61_234, 61_234)
        chown(tree.path("/state/origins"), 61_234, 61_234)
        chown(tree.path("/state/origins/\(address)"), 61_234, 61_234)
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(address)?.driver == "amdgpu")
        // Only below a directory root handed over: not one inside an ordinary user's.
        chown(tree.path("/state"), 1000, 1000)
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(address) == nil)
        // Nor a link the dynamic user planted.
        chown(tree.path("/state"), 61_234, 61_234)
        try tree.file("/elsewhere", "driver=amdgpu\noverride=\nmoved-to=vfio-pci\n")
        unlink(tree.path("/state/origins/\(address)"))
        try tree.link("/state/origins/\(address)", to: tree.path("/elsewhere"))
        lchown(tree.path("/state/origins/\(address)"), 61_234, 61_234)
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(address) == nil)
        // Nor below a sticky directory (/tmp, /dev/shm), where any dynamic user may make one.
        unlink(tree.path("/state/origins/\(address)"))
        try tree.file("/state/origins/\(address)", "driver=amdgpu\noverride=\nmoved-to=vfio-pci\n")
        chown(tree.path("/state/origins/\(address)"), 61_234, 61_234)
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(address)?.driver == "amdgpu")
        chmod(tree.root, 0o1777)
        defer { chmod(tree.root, 0o755) }
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(address) == nil)
    }

    /// A record is written only where it would be believed: a state directory below another
    /// user's took records the agent then refused to read, so a device it moved could never
    /// be put back (found by this round's attacker). The save now fails, and with it the
    /// step that would move the device; the unit's dynamic user's runtime directory still
    /// takes them.
    @Test(.enabled(if: runningAsRoot, "chown needs root"))
    func aRecordIsWrittenOnlyWhereItWouldBeBelieved() throws {
        let tree = try FakeSysfs()
        let address = try #require(PCIAddress("0000:0b:00.0"))
        let origin = DriverOrigin(driver: "amdgpu", override: nil, movedTo: "vfio-pci")
        try tree.mkdir("/state")
        chown(tree.path("/state"), 1000, 1000)
        let store = OriginStore(stateDirectory: tree.path("/state"), writable: true)
        #expect(throws: IOFailure.self) { try store.save(address, origin) }
        do {
            try store.save(address, origin)
        } catch {
            let said = "\(error)"
            #expect(said.contains("not owned by root") && said.contains("would not be believed"), "\(said)")
        }
        var status = stat()
        #expect(lstat(tree.path("/state/origins/\(address)"), &status) != 0, "a record was left")
        // Handed to the unit's dynamic user by root: written, and read back.
        chown(tree.path("/state"), 61_234, 61_234)
        try store.save(address, origin)
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: false).load(address) == origin)
    }

    /// A temporary link left by a write the agent was killed in the middle of goes at the
    /// sweep, once a minute old; a fresh one (a write in flight) and what only looks like
    /// one stay.
    @Test func theSweepRemovesTemporaryLinksAMinuteOld() throws {
        let tree = try FakeSysfs()
        let address = try #require(PCIAddress("0000:0b:00.0"))
        let store = OriginStore(stateDirectory: tree.path("/state"), writable: true)
        try store.save(address, DriverOrigin(driver: "amdgpu", override: nil, movedTo: "vfio-pci"))
        let (stale, fresh) = (".\(address).k3j9x0", ".\(address).a1b2c3")
        // What only looks like one: a suffix the agent never makes, an address it never spells so.
        let others = [".\(address).notes~", ".\(address).", ".0000:0B:00.0.k3j9x0"]
        for name in [stale, fresh] + others { try tree.link("/state/origins/" + name, to: "driver=\n") }
        var old = [timespec(tv_sec: time(nil) - 3600, tv_nsec: 0), timespec(tv_sec: time(nil) - 3600, tv_nsec: 0)]
        for name in [stale] + others {
            #expect(utimensat(AT_FDCWD, tree.path("/state/origins/" + name), &old, Glibc.AT_SYMLINK_NOFOLLOW) == 0)
        }
        #expect(store.sweep(keeping: [address]).isEmpty)
        let left = try FileManager.default.contentsOfDirectory(atPath: tree.path("/state/origins")).sorted()
        #expect(left == ([fresh, "\(address)"] + others).sorted())
        #expect(store.load(address)?.driver == "amdgpu")
    }

    /// Removing a record goes through the directory the walk judged: a link the dynamic user
    /// put in place of its origins directory leads the removal nowhere.
    @Test(.enabled(if: runningAsRoot, "chown needs root"))
    func aRecordIsRemovedOnlyInTheDirectoryJudged() throws {
        let tree = try FakeSysfs()
        let address = try #require(PCIAddress("0000:ee:00.0"))
        try tree.mkdir("/state")
        chown(tree.path("/state"), 61_234, 61_234)
        try tree.mkdir("/victim")
        chmod(tree.path("/victim"), 0o700)
        try tree.file("/victim/\(address)", "root's\n")
        try tree.link("/state/origins", to: tree.path("/victim"))
        lchown(tree.path("/state/origins"), 61_234, 61_234)
        let store = OriginStore(stateDirectory: tree.path("/state"), writable: true)
        store.remove(address)
        #expect(store.sweep(keeping: []) == [])
        #expect(access(tree.path("/victim/\(address)"), F_OK) == 0)
    }

    /// A record names a driver the agent writes into a sysfs path: a driver name only. And
    /// it is exactly what the agent writes: a key misspelt, missing, repeated or unknown, a
    /// byte-order mark, a CR, a number with a sign, is not taken for "came from no driver".
    @Test(arguments: [
        "driver=../../../../tmp/x\noverride=\nmoved-to=vfio-pci\n",
        "driver=amdgpu\noverride=\u{1b}[31mzz\nmoved-to=vfio-pci\n",
        "Driver=amdgpu\noverride=\nmoved-to=vfio-pci\n",
        "\u{feff}driver=amdgpu\noverride=\nmoved-to=vfio-pci\n",
        "\n\n\nmoved-to=vfio-pci",
        "garbage\nmoved-to=vfio-pci\ndriver=ice\noverride=\n",
        "driver=../../evil\ndriver=ice\noverride=\nmoved-to=vfio-pci\n",
        "driver=ice\r\noverride=\nmoved-to=vfio-pci\n",
        "driver=ice\noverride=\nmoved-to=vfio-pci",
        "driver=i915\noverride=\nmoved-to=\nsriov-vfs=+4\nsriov-autoprobe=1\n",
        "driver=i915\noverride=\nmoved-to=\nsriov-vfs=4\nsriov-autoprobe=1\nextra=1\n",
        "driver=ice\noverride=\nmoved-to=vfio-pci\ndevice=8086:15930\n",
        "driver=ice\noverride=\nmoved-to=vfio-pci\ndevice=8086:1593\ndevice=8086:1592\n",
        "driver=ice\noverride=\nmoved-to=vfio-pci\ndevice=8086:159A\n",
        "driver=ice\noverride=\ndevice=8086:1593\nmoved-to=vfio-pci\n"
    ])
    func aRecordNamingAPathOrAControlCharacterIsNotBelieved(record: String) throws {
        let tree = try FakeSysfs()
        let address = try #require(PCIAddress("0000:0b:00.0"))
        try tree.mkdir("/state/origins")
        try tree.file("/state/origins/\(address)", record)
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(address) == nil)
        #expect(unlink(tree.path("/state/origins/\(address)")) == 0)
        try tree.link("/state/origins/\(address)", to: record)
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(address) == nil)
    }

    /// What the agent writes reads back as the origin it wrote, each kind of record.
    @Test(arguments: [
        DriverOrigin(driver: "mlx5_core", override: nil, movedTo: "vfio-pci"),
        DriverOrigin(driver: nil, override: "pci-stub", movedTo: "none"),
        DriverOrigin(driver: "i915", override: nil, movedTo: nil, sriov: SRIOVOrigin(numVFs: 0, autoprobe: true))
    ])
    func aRecordTheAgentWroteReadsBack(origin: DriverOrigin) throws {
        let tree = try FakeSysfs()
        let address = try #require(PCIAddress("0000:0b:00.0"))
        try OriginStore(stateDirectory: tree.path("/state"), writable: true).save(address, origin)
        #expect(OriginStore(stateDirectory: tree.path("/state"), writable: true).load(address) == origin)
    }
}
