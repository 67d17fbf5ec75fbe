import Glibc
import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Policy
import Testing

struct RealKernelIOTests {
    @Test(.enabled(if: runningAsRoot, "mknod and chown need root"))
    func nodeOwnershipGoesThroughTheDescriptor() throws {
        let tree = try FakeSysfs()
        try tree.characterNode("/dev/vfio/12")
        let io = RealKernelIO(paths: HostPaths(root: tree.root))
        try io.setNodeAccess(tree.path("/dev/vfio/12"), uid: 1000, gid: 993, mode: 0o660)
        let st = tree.stat("/dev/vfio/12")
        #expect(st.st_uid == 1000 && st.st_gid == 993 && st.st_mode & 0o7777 == 0o660)
        #expect(st.st_mode & S_IFMT == S_IFCHR)
        #expect(try io.nodeState(tree.path("/dev/vfio/12")) == NodeState(uid: 1000, gid: 993, mode: 0o660))
    }

    @Test(.enabled(if: runningAsRoot, "mknod needs root"))
    func aPlantedSymlinkIsNeverFollowed() throws {
        let tree = try FakeSysfs()
        try tree.characterNode("/dev/target")
        try tree.file("/etc/shadow-like", "secret\n")
        try tree.link("/dev/vfio/12", to: tree.path("/dev/target"))
        try tree.link("/dev/vfio/13", to: tree.path("/etc/shadow-like"))
        let io = RealKernelIO(paths: HostPaths(root: tree.root))
        for group in [12, 13] {
            #expect(throws: IOFailure.self) {
                try io.setNodeAccess(tree.path("/dev/vfio/\(group)"), uid: 1000, gid: 993, mode: 0o666)
            }
        }
        #expect(tree.stat("/dev/target").st_uid == 0 && tree.stat("/dev/target").st_mode & 0o777 == 0o600)
        #expect(tree.stat("/etc/shadow-like").st_uid == 0 && tree.stat("/etc/shadow-like").st_mode & 0o777 == 0o644)
        do {
            try io.setNodeAccess(tree.path("/dev/vfio/12"), uid: 1, gid: 1, mode: 0o666)
        } catch {
            #expect(error.errno == .ELOOP)
            #expect(error.description.hasSuffix("Too many levels of symbolic links (ELOOP): a symlink, not followed"))
        }
    }

    /// The longest target a link can have (PATH_MAX less one byte) is read whole, through
    /// a path and through a directory's descriptor; a missing link says ENOENT.
    /// A link's last component, as the agent takes a driver's, a group's or a PF's name.
    @Test(
        arguments: [
            ("../../../bus/pci/drivers/vfio-pci", "vfio-pci"), ("vfio-pci", "vfio-pci"), ("a/b//", "b"),
            ("a//b", "b"), ("/", nil), ("", nil), ("///", nil), ("../é/ü", "ü"), ("../../🙂", "🙂"),
        ] as [(String, String?)])
    func aLinksLastComponentIsItsName(link: String, name: String?) {
        #expect(lastComponent(link) == name)
    }

    @Test func theLongestLinkTargetIsReadWhole() throws {
        let tree = try FakeSysfs()
        let target = String(repeating: "a/", count: (Int(PATH_MAX) - 1) / 2) + "b"
        #expect(target.utf8.count == Int(PATH_MAX) - 1)
        #expect(symlink(target, tree.path("/long")) == 0)
        #expect(try readSymbolicLink(tree.path("/long")) == target)
        let directory = open(tree.root, O_PATH | O_DIRECTORY | O_CLOEXEC)
        defer { close(directory) }
        #expect(try readSymbolicLink("long", in: directory) == target)
        #expect(throws: Errno.ENOENT) { try readSymbolicLink("missing", in: directory) }
    }

    /// A link whose target is not UTF-8 is EILSEQ however it is read (by path, by a
    /// directory's descriptor, resolved): decoded, its bytes would be U+FFFD, another name.
    /// A device whose `driver` link is such is unreadable, never on a driver named so.
    @Test func aLinkTargetThatIsNotUTF8IsRefusedWhereverItIsRead() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:01:00.0", id: "8086:1572", class: "0x020000", driver: "i40e", group: 1)
        let raw = Array(tree.path("/sys/bus/pci/drivers/i40").utf8) + [0xFF]
        #expect(mkdir((raw + [0]).map { CChar(bitPattern: $0) }, 0o755) == 0)
        let driver = tree.path("/sys/bus/pci/devices/0000:01:00.0/driver")
        #expect(unlink(driver) == 0)
        let target = Array("../../drivers/i40".utf8) + [0xFF, 0]
        #expect(symlink(target.map { CChar(bitPattern: $0) }, driver) == 0)
        let paths = HostPaths(root: tree.root)
        let io = RealKernelIO(paths: paths)
        #expect(throws: Errno.EILSEQ) { try readSymbolicLink(driver) }
        func expectRefused(_ failure: IOFailure?) {
            #expect(failure?.errno == .EILSEQ, "\(String(describing: failure))")
            #expect(failure?.description.hasSuffix("it leads to a name that is not UTF-8") == true)
        }
        expectRefused(#expect(throws: IOFailure.self) { try io.readLink(driver) })
        expectRefused(#expect(throws: IOFailure.self) { try io.resolve(driver) })
        let reader = SysfsReader(io: io, paths: paths)
        #expect(throws: AgentError.self) { try reader.device(PCIAddress("0000:01:00.0")!) }
    }

    /// `maps` is read line by line on the newline byte: a file mapped under a name ending in
    /// `\r` does not join its line to the next and hide a mapping of a VFIO node there.
    @Test(.enabled(if: runningAsRoot, "mknod needs root"))
    func aMappingAfterANameEndingInACarriageReturnIsSeen() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/dev/vfio")
        let number = deviceNumber(major: 511, minor: 12)
        #expect(mknod(tree.path("/dev/vfio/12"), S_IFCHR | 0o600, dev_t(number)) == 0)
        try tree.mkdir("/proc/4242/task/4242/fd")
        try tree.file("/proc/4242/comm", "qemu-system-x86\n")
        try tree.file(
            "/proc/4242/maps",
            "7f0000000000-7f0000001000 r--p 00000000 08:01 77 /tmp/x\r\n"
                + "7f0000001000-7f0000002000 rw-s 00000000 00:05 12 /dev/vfio/12\n")
        let io = RealKernelIO(paths: HostPaths(root: tree.root))
        let holders = io.openers(of: [number], devices: [PCIAddress("0000:12:00.0")!])
        #expect(holders.map { $0.pid } == [4242] && holders.first?.command == "qemu-system-x86", "\(holders)")
    }

    @Test func aRegularFileIsNotADeviceNode() throws {
        let tree = try FakeSysfs()
        try tree.file("/dev/vfio/12", "")
        let io = RealKernelIO(paths: HostPaths(root: tree.root))
        #expect(
            throws: IOFailure(
                .open, tree.path("/dev/vfio/12"), errno: .EINVAL, detail: "not a character device, left alone")
        ) {
            try io.setNodeAccess(tree.path("/dev/vfio/12"), uid: 1000, gid: nil, mode: nil)
        }
        #expect(try io.nodeState(tree.path("/dev/vfio/12"))?.isCharacterDevice == false)
    }

    @Test func writesNeverCreateFilesAndNameFileValueAndErrno() throws {
        let tree = try FakeSysfs()
        let io = RealKernelIO(paths: HostPaths(root: tree.root))
        let missing = tree.path("/sys/bus/pci/devices/0000:0b:00.0/driver_override")
        #expect(throws: IOFailure(.write, missing, value: "vfio-pci", errno: .ENOENT)) {
            try io.write(missing, "vfio-pci")
        }
        #expect(!io.exists(missing))
        let failure = IOFailure(.write, missing, value: "vfio-pci", errno: .EBUSY)
        #expect(failure.description == "write \"vfio-pci\" to \(missing): Device or resource busy (EBUSY)")
    }

    @Test func emptyValuesAreWrittenAsANewline() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:73bf")
        try tree.file("/sys/bus/pci/devices/0000:0b:00.0/driver_override", "vfio-pci\n")
        let io = RealKernelIO(paths: HostPaths(root: tree.root))
        try io.write(tree.path("/sys/bus/pci/devices/0000:0b:00.0/driver_override"), "\n")
        #expect(try tree.read("/sys/bus/pci/devices/0000:0b:00.0/driver_override") == "\n")
    }

    @Test func moduleLoadingIsOffUnderATestRoot() throws {
        let tree = try FakeSysfs()
        let io = RealKernelIO(paths: HostPaths(root: tree.root))
        #expect(throws: IOFailure.self) { try io.loadModule("vfio-pci") }
    }

    @Test func theReaderTurnsSysfsIntoDevices() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:73bf", driver: "amdgpu", group: 20)
        try tree.device("0000:0b:00.1", id: "1002:ab28", class: "0x040300", group: 20)
        try tree.file("/sys/bus/pci/devices/0000:0b:00.0/boot_vga", "1\n")
        try tree.file("/sys/bus/pci/devices/0000:0b:00.1/driver_override", "vfio-pci\n")
        let reader = SysfsReader(io: RealKernelIO(paths: HostPaths(root: tree.root)), paths: HostPaths(root: tree.root))
        let view = try reader.view(around: [PCIAddress("0000:0b:00.0")!])
        let gpu = try #require(view.devices[PCIAddress("0000:0b:00.0")!])
        #expect(gpu.id == PCIID("1002:73bf") && gpu.classCode == 0x030000 && gpu.driver == "amdgpu")
        #expect(gpu.bootVGA && gpu.iommuGroup == 20 && gpu.driverOverride == nil && gpu.physfn == nil)
        let audio = try #require(view.devices[PCIAddress("0000:0b:00.1")!])
        #expect(audio.driver == nil && audio.driverOverride == "vfio-pci")
        #expect(view.drivers == ["amdgpu"])
        #expect(throws: AgentError.gone(PCIAddress("0000:0c:00.0")!)) { try reader.device(PCIAddress("0000:0c:00.0")!) }
    }

    @Test func garbageInAnAttributeIsAnErrorNamingTheFile() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:73bf")
        try tree.file(
            "/sys/bus/pci/devices/0000:0b:00.0/uevent", "PCI_CLASS=display\nPCI_ID=1002:73BF\nPCI_SUBSYS_ID=1002:0001\n"
        )
        let paths = HostPaths(root: tree.root)
        let reader = SysfsReader(io: RealKernelIO(paths: paths), paths: paths)
        #expect(
            throws: AgentError.malformed(
                path: tree.path("/sys/bus/pci/devices/0000:0b:00.0/uevent"), value: "PCI_CLASS=display",
                expected: "a 24-bit hex number")
        ) {
            try reader.device(PCIAddress("0000:0b:00.0")!)
        }
    }
}

struct SysfsTreeTests {
    /// The bench's sysfs tree and the simulated kernel are two views of one host: the real
    /// file layer must read from the tree exactly what the reader gets from the simulator.
    @Test(arguments: ["seed-000-mi300x.json", "seed-002-flex.json", "seed-004-x570.json"])
    func theRealFileLayerReadsTheTreeAsTheSimulatorShowsIt(host file: String) throws {
        let kernel = try SimulatedKernel(try SimHost.load(file))
        let tree = try FakeSysfs()
        let paths = HostPaths(root: tree.root)
        try SysfsTree(paths: paths).write(kernel.inspect { $0 })
        let simulated = try SysfsReader(io: kernel, paths: kernel.paths).fullView()
        let real = try SysfsReader(io: RealKernelIO(paths: paths), paths: paths).fullView()
        #expect(real.devices.count == simulated.devices.count && !real.devices.isEmpty)
        for (address, device) in simulated.devices {
            #expect(real.devices[address] == device, "\(address)")
        }
        #expect(real.drivers == simulated.drivers)
    }

    /// Links are relative, as sysfs makes them: a tool that resolves one (driverctl's
    /// `realpath | cut -c5-`) finds the device under /sys when the tree is mounted there.
    @Test func linksAreRelativeAsInSysfs() throws {
        #expect(
            SysfsTree.relative("/r/sys/devices/pci0000:00/0000:00:01.0", from: "/r/sys/bus/pci/devices/0000:00:01.0")
                == "../../../devices/pci0000:00/0000:00:01.0")
        #expect(
            SysfsTree.relative("/r/sys/bus/pci/drivers/vfio-pci", from: "/r/sys/devices/pci0000:00/0000:00:01.0/driver")
                == "../../../bus/pci/drivers/vfio-pci")
        let kernel = try SimulatedKernel(try SimHost.load("seed-000-mi300x.json"))
        let tree = try FakeSysfs()
        try SysfsTree(paths: HostPaths(root: tree.root)).write(kernel.inspect { $0 })
        let devices = tree.root + "/sys/bus/pci/devices"
        let io = RealKernelIO(paths: HostPaths(root: tree.root))
        let names = try io.list(devices)
        #expect(names.count == kernel.inspect { $0.devices.count })
        for name in names {
            let target = try io.readLink(devices + "/" + name)
            #expect(target.hasPrefix("../../../devices/"), "\(name): \(target)")
        }
    }

    /// A mirror follows the kernel: written again after a bind it changes only what differs
    /// (an attribute keeps its inode, as in sysfs), links the driver, makes the group's node;
    /// after an unplug the device's directory and links are gone.
    @Test(.enabled(if: runningAsRoot, "mknod needs root"))
    func aMirrorFollowsTheKernelInPlace() throws {
        let kernel = try SimulatedKernel(try SimHost.load("seed-000-mi300x.json"))
        try kernel.loadModule("vfio-pci")
        let tree = try FakeSysfs()
        let mirror = SysfsTree(paths: HostPaths(root: tree.root), mirrorsKernel: true)
        try mirror.write(kernel.inspect { $0 })
        let gpu = "/sys/bus/pci/devices/0000:12:00.0"
        let before = tree.stat(gpu + "/driver_override").st_ino
        #expect(tree.stat("/dev/vfio/12").st_mode == 0, "no node before a VFIO driver has a member")
        try kernel.write(gpu + "/driver_override", "vfio-pci")
        try kernel.write("/sys/bus/pci/drivers_probe", "0000:12:00.0")
        try mirror.write(kernel.inspect { $0 })
        let io = RealKernelIO(paths: HostPaths(root: tree.root))
        #expect(try io.read(tree.path(gpu + "/driver_override")) == "vfio-pci\n")
        #expect(tree.stat(gpu + "/driver_override").st_ino == before)
        #expect(try io.readLink(tree.path(gpu + "/driver")).hasSuffix("/bus/pci/drivers/vfio-pci"))
        #expect(try io.nodeState(tree.path("/dev/vfio/12")) == NodeState(uid: 0, gid: 0, mode: 0o600))
        #expect(io.exists(tree.path("/sys/bus/pci/drivers/vfio-pci/unbind")))
        kernel.unplug(PCIAddress("0000:12:00.0")!)
        try mirror.write(kernel.inspect { $0 })
        #expect(!io.exists(tree.path(gpu)) && !io.exists(tree.path("/sys/kernel/iommu_groups/12/devices/0000:12:00.0")))
        #expect(!io.exists(tree.path("/sys/devices/pci0000:00/0000:00:02.0/0000:10:00.0/0000:11:00.0/0000:12:00.0")))
        #expect(io.exists(tree.path("/sys/devices/pci0000:00/0000:00:02.0/0000:10:00.0/0000:11:00.0")))
        #expect(!io.exists(tree.path("/dev/vfio/12")))
    }
}

/// Paths below a device directory on the real file layer: the kernel resolves them beneath
/// the directory (openat2, or the O_NOFOLLOW walk) and never follows a link.
struct BeneathTests {
    func tree() throws -> (FakeSysfs, RealKernelIO, String) {
        let tree = try FakeSysfs()
        try tree.device("0000:08:00.0", id: "1002:1479", class: "0x060400", driver: "pcieport", group: 16)
        let dir = "/sys/bus/pci/devices/0000:08:00.0"
        try tree.mkdir("\(dir)/power")
        try tree.file("\(dir)/power/control", "auto\n")
        try tree.file("\(dir)/remove", "")
        chmod(tree.path("\(dir)/remove"), 0o200)
        try tree.link("\(dir)/subsystem", to: "../../../bus/pci")
        try tree.file("/sys/bus/pci/rescan", "")
        try tree.mkdir("\(dir)/0000:09:00.0")
        try tree.file("\(dir)/0000:09:00.0/d3cold_allowed", "1\n")
        return (tree, RealKernelIO(paths: HostPaths(root: tree.root)), tree.path(dir))
    }

    @Test func anAttributeOfTheDeviceIsWrittenAndReadBeneathIt() throws {
        let (tree, io, dir) = try tree()
        try io.write(beneath: dir, "power/control", "on\n")
        #expect(try io.read(beneath: dir, "power/control") == "on\n")
        #expect(try tree.read("/sys/bus/pci/devices/0000:08:00.0/power/control") == "on\n")
        #expect(try io.entry(beneath: dir, "power") == .directory)
        #expect(try io.entry(beneath: dir, "power/control") == .file(readable: true))
        #expect(try io.entry(beneath: dir, "remove") == .file(readable: false))
        #expect(try io.entry(beneath: dir, "subsystem") == .symlink)
        #expect(try io.entry(beneath: dir, "nothing") == nil)
        #expect(try io.list(beneath: dir, "").contains("power"))
    }

    @Test func noPathPassesThroughALink() throws {
        let (tree, io, dir) = try tree()
        for path in ["subsystem/rescan", "driver/unbind", "iommu_group/type"] {
            #expect(throws: IOFailure.self, "\(path)") { try io.write(beneath: dir, path, "1\n") }
            #expect(throws: IOFailure.self, "\(path)") { try io.read(beneath: dir, path) }
        }
        #expect(try tree.read("/sys/bus/pci/rescan") == "")
        do {
            try io.write(beneath: dir, "subsystem/rescan", "1\n")
        } catch {
            #expect(error.errno == .ELOOP || error.errno == .EXDEV)
        }
    }

    @Test func theWalkerStopsAtChildFunctionsAndLinksAndRefusesWriteOnlyAttributes() throws {
        let (tree, io, dir) = try tree()
        defer { withExtendedLifetime(tree) {} }
        let walker = AttributeWalker(io: io, directory: dir)
        #expect(walker.readings(for: try AttributeWrite.parse("*/d3cold_allowed=0").get()) == [])
        let control = walker.readings(for: try AttributeWrite.parse("*/control=on").get())
        #expect(control == [AttributeReading(path: "power/control", state: .value("auto\n"))], "\(control)")
        let remove = walker.readings(for: try AttributeWrite.parse("remov*=1").get())
        #expect(
            remove == [
                AttributeReading(path: "remove", state: .refused("remove is controlled by the agent or another key"))
            ], "\(remove)")
    }
}

/// Who holds a node open, asked of this machine's real /proc (read only).
struct OpenersTests {
    @Test func aProcessHoldingANodeOpenIsFoundWithItsCommandAndPid() throws {
        let io = RealKernelIO(paths: HostPaths(root: "/"))
        let null = try #require(io.deviceNumber("/dev/null"))
        // A child holding /dev/null open on a descriptor of its own.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 7, "/dev/null", O_RDONLY, 0)
        var pid = pid_t()
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sleep"), strdup("30"), nil]
        defer { argv.forEach { free($0) } }
        #expect(posix_spawn(&pid, "/bin/sleep", &actions, nil, argv, environ) == 0)
        defer {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        #expect(
            waitFor(.seconds(5)) {
                io.openers(of: [null], devices: []).contains { $0.pid == pid && $0.command == "sleep" }
            })
        // Its own descriptors are never counted: the agent is no VMM.
        let mine = open("/dev/null", O_RDONLY)
        defer { close(mine) }
        #expect(!io.openers(of: [null], devices: []).contains { $0.pid == getpid() })
        #expect(io.deviceNumber("/etc/passwd") == nil)
    }
}

/// `/dev/iommu`'s ACL on the real file layer: the kernel takes the attribute as written.
struct NodeACLTests {
    @Test(.enabled(if: runningAsRoot, "mknod needs root"))
    func grantingAddsACLEntriesTheKernelAccepts() throws {
        let tree = try FakeSysfs()
        try tree.characterNode("/dev/iommu", mode: 0o660)
        chmod(tree.path("/dev/iommu"), 0o660)  // mknod applies the umask
        let io = RealKernelIO(paths: HostPaths(root: tree.root))
        let before = try #require(try io.nodeAccess(tree.path("/dev/iommu")))
        #expect(before.userCanOpen(0) && !before.userCanOpen(1000) && !before.groupCanOpen(993))
        let granted = Result { () throws(IOFailure) in
            try io.grantNodeAccess(tree.path("/dev/iommu"), users: [1000], groups: [993])
        }
        // A file system without ACLs under /tmp: nothing to show here.
        if case .failure(let failure) = granted, failure.errno == .EOPNOTSUPP { return }
        _ = try granted.get()
        let after = try #require(try io.nodeAccess(tree.path("/dev/iommu")))
        #expect(after.userCanOpen(1000) && after.groupCanOpen(993) && after.userCanOpen(0) && after.groupCanOpen(0))
        #expect(!after.everyone)
        // The mode's owner and group bits are kept; the group class shows the mask.
        #expect(tree.stat("/dev/iommu").st_mode & 0o777 == 0o660)
        // A symlink in its place is never followed.
        try tree.file("/etc/target", "x")
        try tree.link("/dev/iommu2", to: tree.path("/etc/target"))
        #expect(throws: IOFailure.self) { try io.grantNodeAccess(tree.path("/dev/iommu2"), users: [1000], groups: []) }
    }

    /// One look at a device's directory, afresh (one descriptor) or under the inode the
    /// caller knows (by path, the inode after): what is there, nothing for what is not, and
    /// no entry reached through a link (a file or directory swapped for one is an error or
    /// absent, never its target).
    /// On sysfs (`asSysfs`) a fresh look reads by path too, between two `stat`s.
    @Test(arguments: [false, true], [false, true])
    func aDirectoryIsReadInOneLookAndNeverThroughALink(underKnownInode: Bool, asSysfs: Bool) throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:73bf", driver: "amdgpu", group: 20)
        try tree.mkdir("/sys/bus/pci/devices/0000:0b:00.0/vfio-dev/vfio3")
        let io = RealKernelIO(paths: HostPaths(root: tree.root), asSysfs: asSysfs)
        let directory = tree.path("/sys/bus/pci/devices/0000:0b:00.0")
        let reading = try io.readDirectory(
            directory,
            DirectoryRequest(
                files: ["driver_override", "boot_vga"], links: ["driver", "physfn"], listings: ["vfio-dev", "absent"],
                ofKnownDevice: underKnownInode))
        #expect(reading.inode == (try io.inode(directory)))
        #expect(reading.files == ["driver_override": "(null)\n"])
        #expect(reading.links == ["driver": "../../../bus/pci/drivers/amdgpu"])
        #expect(reading.listings == ["vfio-dev": ["vfio3"]])

        try tree.file("/etc/secret", "x\n")
        unlink(tree.path("/sys/bus/pci/devices/0000:0b:00.0/driver_override"))
        try tree.link("/sys/bus/pci/devices/0000:0b:00.0/driver_override", to: tree.path("/etc/secret"))
        let override = DirectoryRequest(files: ["driver_override"], ofKnownDevice: underKnownInode)
        #expect(throws: IOFailure.self) { try io.readDirectory(directory, override) }
        try tree.mkdir("/etc/elsewhere/vfio9")
        #expect(rmdir(tree.path("/sys/bus/pci/devices/0000:0b:00.0/vfio-dev/vfio3")) == 0)
        #expect(rmdir(tree.path("/sys/bus/pci/devices/0000:0b:00.0/vfio-dev")) == 0)
        try tree.link("/sys/bus/pci/devices/0000:0b:00.0/vfio-dev", to: tree.path("/etc/elsewhere"))
        let listing = DirectoryRequest(listings: ["vfio-dev"], ofKnownDevice: underKnownInode)
        #expect((try? io.readDirectory(directory, listing))?.listings["vfio-dev"] == nil)
        #expect(throws: IOFailure.self) {
            try io.readDirectory(directory + "/gone", DirectoryRequest(ofKnownDevice: underKnownInode))
        }
    }

    /// What is known of a device is kept only where its directory lies on sysfs, whose inode
    /// tells it from every other that stood at its address. On a tree that is not (a test
    /// bed, `--root`), a directory renamed away and back (A, B, A) while its entries were
    /// read by path passed the inode check with B's driver link taken for A's, and the agent
    /// unbound B from its driver; ext4 gives a deleted directory's inode to the next one made
    /// (A removed, B made at its address: A's identity with B's driver). Asked once at start
    /// whether the devices lie on sysfs, a link there to sysfs then swapped for a tree of
    /// files passed it too. All found by this round's attackers on the built daemon; each
    /// look now says whether the directory it saw lies on the file system that is sysfs.
    @Test func whatIsKnownOfADeviceIsKeptOnlyWhereItsDirectoryIsOnSysfs() throws {
        let tree = try FakeSysfs()
        let address = PCIAddress("0000:0b:00.0")!
        try tree.device("0000:0b:00.0", id: "1002:73bf", driver: "amdgpu", group: 20)
        let paths = HostPaths(root: tree.root)
        #expect(RealKernelIO(paths: paths).sysfs == nil)
        let reader = SysfsReader(io: RealKernelIO(paths: paths), paths: paths)
        _ = try reader.device(address)
        _ = try reader.view(around: [address])
        #expect(reader.identities.count == 0)
        let trusting = SysfsReader(io: RealKernelIO(paths: paths, asSysfs: true), paths: paths)
        _ = try trusting.device(address)
        #expect(trusting.identities.count == 1)
        // Asked before a tree is laid out below the root (as the lab's mirror asks).
        try tree.mkdir("/empty")
        #expect(RealKernelIO(paths: HostPaths(root: tree.path("/empty")), asSysfs: true).sysfs != nil)
        // This machine's own sysfs, only asked which file system it is and looked at.
        guard access("/sys/kernel/mm", F_OK) == 0 else { return }
        #expect(RealKernelIO(paths: HostPaths(root: "/")).sysfs != nil)
        // The devices lead to sysfs when the agent starts, then to a tree of files.
        let devices = tree.path("/sys/bus/pci/devices")
        #expect(rename(devices, devices + ".files") == 0)
        try tree.link("/sys/bus/pci/devices", to: "/sys/kernel/mm")
        let io = RealKernelIO(paths: paths)
        #expect(io.sysfs != nil)
        #expect(unlink(devices) == 0 && rename(devices + ".files", devices) == 0)
        let swapped = SysfsReader(io: io, paths: paths)
        #expect(try swapped.device(address).id == PCIID("1002:73bf")!)
        #expect(swapped.identities.count == 0)
    }

    /// A fresh look on sysfs reads the entries by path between two `stat`s of the directory,
    /// and takes them only where both show the same one. While the address is taken over
    /// and over by another device (a directory made new each time, as the kernel makes
    /// them), no reading holds one device's IDs with another's driver link.
    @Test func aFreshLookByPathNeverMixesTwoDevices() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/sys/bus/pci/devices")
        let kinds = [("1002:73BF", "amdgpu"), ("8086:10D3", "e1000e")], count = 400
        for index in 0..<count {
            let (id, driver) = kinds[index % 2]
            try tree.mkdir("/sys/devices/pool/\(index)")
            try tree.file("/sys/devices/pool/\(index)/uevent", "DRIVER=\(driver)\nPCI_ID=\(id)\n")
            try tree.link("/sys/devices/pool/\(index)/driver", to: "../../../bus/pci/drivers/\(driver)")
        }
        let directory = tree.path("/sys/bus/pci/devices/0000:0b:00.0"), spare = directory + ".new"
        try tree.link("/sys/bus/pci/devices/0000:0b:00.0", to: tree.path("/sys/devices/pool/0"))
        let io = RealKernelIO(paths: HostPaths(root: tree.root), asSysfs: true)
        let request = DirectoryRequest(files: ["uevent"], links: ["driver"])
        let done = Locked(false), swaps = Locked(0), pool = tree.path("/sys/devices/pool/")
        startThread {
            var index = 1
            while !done.withLock({ $0 }) {
                _ = symlink(pool + String(index), spare)
                _ = rename(spare, directory)
                swaps.withLock { $0 += 1 }
                index = index % (count - 1) + 1
            }
        }
        // Until the address has been taken over 2,000 times while the looks went on.
        var mixed: [String] = [], read = 0, looks = 0
        while swaps.withLock({ $0 }) < 2_000 && looks < 1_000_000 {
            looks += 1
            guard let reading = try? io.readDirectory(directory, request), let uevent = reading.files["uevent"],
                let driver = reading.links["driver"].flatMap(lastComponent)
            else { continue }
            read += 1
            if !uevent.hasPrefix("DRIVER=\(driver)\n") { mixed.append(uevent + " with " + driver) }
        }
        done.withLock { $0 = true }
        #expect(read > 0 && swaps.withLock { $0 } >= 2_000)
        #expect(mixed.count == 0, "mixed, as \(mixed.first ?? "")")
    }

    /// A test bed's uevent without the IDs has them read from the attribute files in a
    /// second look: only where it saw the same directory as the first are they taken as the
    /// device's (this round's attacker swapped in a NIC between the two: the GPU's IDs with
    /// the NIC's driver link, and the NIC unbound). A device swapped there is one that left.
    @Test func idsReadInASecondLookAreTakenOnlyFromTheSameDirectory() throws {
        let tree = try FakeSysfs()
        let address = PCIAddress("0000:0b:00.0")!
        try tree.device("0000:0b:00.0", id: "8086:10d3", class: "0x020000", driver: "e1000e", group: 20)
        try tree.file("/sys/bus/pci/devices/0000:0b:00.0/uevent", "DRIVER=e1000e\nPCI_SLOT_NAME=0000:0b:00.0\n")
        try tree.device("0000:0c:00.0", id: "1002:73bf", group: 21)
        let paths = HostPaths(root: tree.root)
        let io = InterposedKernelIO(RealKernelIO(paths: paths))
        let reader = SysfsReader(io: io, paths: paths)
        #expect(try reader.device(address).id == PCIID("8086:10d3")!)
        // The second look finds the GPU's attribute files where the NIC stood.
        io.interpose = { (directory: String, request: DirectoryRequest) throws(IOFailure) -> DirectoryReading in
            guard request.files.contains("vendor") else { return try io.base.readDirectory(directory, request) }
            return try io.base.readDirectory(tree.path("/sys/bus/pci/devices/0000:0c:00.0"), request)
        }
        #expect(throws: AgentError.gone(address)) { try reader.device(address) }
    }

    /// Entries read by path under a known inode while the device was swapped may be the old
    /// one's: a reading is used only where it shows the inode it was asked under, never
    /// where it matches what the cache holds by then (another reader may have put the new
    /// device's identity there meanwhile). Both readers of known devices.
    @Test func entriesReadWhileADeviceWasSwappedAreNeverTakenForTheNewOnes() throws {
        let tree = try FakeSysfs()
        let address = PCIAddress("0000:0b:00.0")!
        try tree.device("0000:0b:00.0", id: "1002:73bf", driver: "vfio-pci", group: 20)
        try tree.mkdir("/sys/bus/pci/devices/0000:0b:00.0/vfio-dev/vfio3")
        let paths = HostPaths(root: tree.root)
        let io = InterposedKernelIO(RealKernelIO(paths: paths, asSysfs: true))
        let reader = SysfsReader(io: io, paths: paths)
        let view = try reader.view(around: [address])
        #expect(view.devices[address]?.vfioDeviceNames == ["vfio3"])
        /// The next reading: the old device's entries, then the swap and another reader's
        /// look at the new device, then the inode of the directory there now.
        func swapDuringTheNextReading() {
            io.interpose = { (directory: String, request: DirectoryRequest) throws(IOFailure) -> DirectoryReading in
                io.interpose = nil
                var stale = try io.base.readDirectory(directory, request)
                #expect(rename(tree.path("/sys/bus/pci/devices/0000:0b:00.0"), tree.path("/sys/gone")) == 0)
                try! tree.device("0000:0b:00.0", id: "10de:2204", driver: "amdgpu")
                reader.identities.forget(address)
                _ = try! reader.device(address)
                stale.inode = try io.base.inode(directory)
                return stale
            }
        }
        swapDuringTheNextReading()
        #expect(try reader.confirming(view, address) == nil)
        #expect(rename(tree.path("/sys/bus/pci/devices/0000:0b:00.0"), tree.path("/sys/gone2")) == 0)
        #expect(rename(tree.path("/sys/gone"), tree.path("/sys/bus/pci/devices/0000:0b:00.0")) == 0)
        reader.identities.forget(address)
        #expect(try reader.device(address).driver == "vfio-pci")
        swapDuringTheNextReading()
        let device = try reader.device(address)
        #expect(device.driver == "amdgpu" && device.id == PCIID("10de:2204")! && device.vfioDeviceNames.isEmpty)
    }

    /// What a VFIO driver's bind makes is listed only while the device is on one, here and
    /// in the simulator (whose answers are assembled from single paths): one system call
    /// less per look at a device on no driver or a host driver.
    @Test func whatAVFIOBindMakesIsListedOnlyOnAVFIODriver() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:0b:00.0", id: "1002:73bf", group: 20)
        try tree.mkdir("/sys/bus/pci/devices/0000:0b:00.0/vfio-dev/vfio3")
        let io = RealKernelIO(paths: HostPaths(root: tree.root))
        let directory = tree.path("/sys/bus/pci/devices/0000:0b:00.0")
        let request = DirectoryRequest(links: ["driver"], listingsOnVFIO: ["vfio-dev"])
        func assembled() throws -> DirectoryReading {
            try DirectoryReading.assembled(
                request, inode: 1, read: { (name) throws(IOFailure) in try io.read(directory + "/" + name) },
                readLink: { (name) throws(IOFailure) in try io.readLink(directory + "/" + name) },
                list: { (name) throws(IOFailure) in try io.list(directory + "/" + name) })
        }
        #expect(try io.readDirectory(directory, request).listings.isEmpty)
        #expect(try assembled().listings.isEmpty)
        // On a host driver the kernel has no vfio-dev/ (this tree has one): not read.
        try tree.link("/sys/bus/pci/devices/0000:0b:00.0/driver", to: "../../../bus/pci/drivers/amdgpu")
        #expect(try io.readDirectory(directory, request).listings.isEmpty)
        #expect(try assembled().listings.isEmpty)
        #expect(unlink(tree.path("/sys/bus/pci/devices/0000:0b:00.0/driver")) == 0)
        try tree.link("/sys/bus/pci/devices/0000:0b:00.0/driver", to: "../../../bus/pci/drivers/vfio-pci")
        #expect(try io.readDirectory(directory, request).listings == ["vfio-dev": ["vfio3"]])
        #expect(try assembled().listings == ["vfio-dev": ["vfio3"]])
        // Without the driver link asked, nothing tells it is unbound: it is listed.
        #expect(unlink(tree.path("/sys/bus/pci/devices/0000:0b:00.0/driver")) == 0)
        #expect(
            try io.readDirectory(directory, DirectoryRequest(listingsOnVFIO: ["vfio-dev"])).listings.count == 1)
    }
}

struct DirectoryEntriesTests {
    /// A directory larger than one getdents64 buffer is read whole, every name once, and
    /// `.` and `..` are never among the names.
    @Test func aDirectoryOfManyLongNamesIsReadWhole() throws {
        let tree = try FakeSysfs()
        let names = (0..<3000).map { String(repeating: "n", count: 200) + String($0) }
        try tree.mkdir("/many")
        for name in names { try tree.file("/many/" + name, "") }
        let fd = open(tree.path("/many"), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        let entries = try #require(DirectoryEntries(closing: fd))
        #expect(entries.names.sorted() == names.sorted() && entries.undecodable.isEmpty)
        #expect(DirectoryEntries(closing: open(tree.path("/many/" + names[0]), O_RDONLY | O_CLOEXEC)) == nil)
    }
}

struct ResolveTests {
    /// `resolve` names what a path leads to as realpath() does, links at any depth and a
    /// linked root included, from the kernel's own name for an O_PATH descriptor.
    @Test func resolveAgreesWithRealpathThroughLinksAtEveryDepth() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/real/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/net/eth0")
        try tree.mkdir("/real/sys/bus/pci/devices")
        try tree.mkdir("/real/sys/class/net")
        try tree.link(
            "/real/sys/bus/pci/devices/0000:01:00.0", to: "../../../devices/pci0000:00/0000:00:01.0/0000:01:00.0")
        try tree.link("/real/sys/class/net/eth0", to: "../../devices/pci0000:00/0000:00:01.0/0000:01:00.0/net/eth0")
        try tree.link("/root", to: tree.path("/real"))
        let io = RealKernelIO(paths: HostPaths(root: tree.path("/root")))
        for path in ["/root/sys/bus/pci/devices/0000:01:00.0", "/root/sys/class/net/eth0", "/root/sys/class/net"] {
            let expected = try #require(realpath(tree.path(path), nil).map { String(cString: $0) })
            #expect(try io.resolve(tree.path(path)) == expected)
        }
        #expect(throws: IOFailure.self) { try io.resolve(tree.path("/root/sys/class/net/eth9")) }
    }
}
