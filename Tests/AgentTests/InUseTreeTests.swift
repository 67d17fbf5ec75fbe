import Foundation
import Glibc
import Testing

/// "Not knowing is not free" on the real file layer, through the built binary: a NIC with
/// its interface up and an NVMe disk mounted on `/`, and each shape of sysfs or /proc that
/// once read as "nothing in use" (an empty or FIFO mount table, a carriage return hiding
/// the next mount, flags gone while the interface is there, a dangling class directory, a
/// link out of the root, a name that is not UTF-8). Each must still keep both devices.
struct InUseTreeTests {
    static let nic = "0000:03:00.0", nvme = "0000:04:00.0"
    static let mount = "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw\n"

    func tree() throws -> FakeSysfs {
        let tree = try FakeSysfs()
        try tree.device(Self.nic, id: "8086:1593", class: "0x020000", driver: "ice", group: 3)
        try tree.device(Self.nvme, id: "144d:a80a", class: "0x010802", driver: "nvme", group: 4)
        try tree.mkdir("/sys/class/net")
        try tree.mkdir("/sys/bus/pci/devices/\(Self.nic)/net/ens1f0")
        try tree.file("/sys/bus/pci/devices/\(Self.nic)/net/ens1f0/flags", "0x1003\n")
        try tree.link("/sys/class/net/ens1f0", to: tree.path("/sys/bus/pci/devices/\(Self.nic)/net/ens1f0"))
        try tree.mkdir("/sys/class/block")
        for (name, number) in [("nvme0n1", "259:0"), ("nvme0n1p1", "259:1")] {
            let directory = "/sys/bus/pci/devices/\(Self.nvme)/nvme/nvme0/\(name)"
            try tree.mkdir(directory + "/holders")
            try tree.file(directory + "/dev", number + "\n")
            try tree.link("/sys/class/block/\(name)", to: tree.path(directory))
        }
        try tablesAndPolicy(tree)
        return tree
    }

    /// The mount and swap tables (`nvme0n1p1` on `/`, no swap) and a policy taking every device.
    func tablesAndPolicy(_ tree: FakeSysfs) throws {
        try tree.mkdir("/proc/self")
        try tree.file("/proc/self/mountinfo", Self.mount)
        try tree.file("/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n")
        try tree.mkdir("/p")
        try tree.file("/p/50.toml", "[[policy]]\nname = \"everything\"\nmatch.ids = [\"*:*\"]\ndriver = \"vfio-pci\"\n")
    }

    /// The plan's line for the device at `address`: its first step or refusal.
    func planned(_ tree: FakeSysfs, _ address: String) throws -> String {
        let result = try Binary.run(["plan", "--root", tree.root, "--policy-dir", tree.path("/p")])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let index = try #require(lines.firstIndex { $0.hasPrefix(address) }, "\(lines)")
        return lines[index + 1]
    }

    @Test func asLaidOutBothAreKept() throws {
        let tree = try tree()
        #expect(try planned(tree, Self.nic).contains("the host uses it: network interface ens1f0 is up"))
        #expect(try planned(tree, Self.nvme).contains("block device nvme0n1p1 is mounted on /"))
    }

    /// A mount table with no mount in it was not the kernel's (it always lists a root).
    @Test(arguments: ["empty", "fifo", "null"])
    func aMountTableThatListsNothingKeepsTheDisk(shape: String) throws {
        let tree = try tree()
        let path = tree.path("/proc/self/mountinfo")
        unlink(path)
        switch shape {
        case "empty": try tree.file("/proc/self/mountinfo", "")
        case "fifo": #expect(mkfifo(path, 0o644) == 0)
        default: try tree.link("/proc/self/mountinfo", to: "/dev/null")
        }
        #expect(try planned(tree, Self.nvme).contains("/proc/self/mountinfo lists no mounts"))
    }

    /// A carriage return before a newline: a Character split joined the two lines.
    @Test func aCarriageReturnDoesNotHideTheNextMount() throws {
        let tree = try tree()
        try tree.file("/proc/self/mountinfo", "21 1 0:20 / /run rw - tmpfs tmpfs rw,size=1\r\n" + Self.mount)
        #expect(try planned(tree, Self.nvme).contains("block device nvme0n1p1 is mounted on /"))
    }

    /// A hidden disk (an NVMe multipath path) has no `dev` as the kernel lays it out: that
    /// is no reason to keep a disk nothing mounts (the real-kernel test found it).
    @Test func aHiddenDiskWithoutANumberLeavesAnUnusedDiskFree() throws {
        let tree = try tree()
        let path = "/sys/bus/pci/devices/\(Self.nvme)/nvme/nvme0/nvme0c0n1"
        try tree.mkdir(path + "/holders")
        try tree.link("/sys/class/block/nvme0c0n1", to: tree.path(path))
        try tree.file("/proc/self/mountinfo", "21 1 0:20 / / rw,relatime - tmpfs tmpfs rw\n")
        let line = try planned(tree, Self.nvme)
        #expect(!line.hasPrefix("  refused"), "\(line)")
    }

    @Test func flagsGoneWhileTheInterfaceIsThereKeepTheNIC() throws {
        let tree = try tree()
        unlink(tree.path("/sys/bus/pci/devices/\(Self.nic)/net/ens1f0/flags"))
        #expect(try planned(tree, Self.nic).contains("cannot be checked: read "))
    }

    @Test func aDanglingClassDirectoryKeepsTheNIC() throws {
        let tree = try tree()
        try FileManager.default.removeItem(atPath: tree.path("/sys/class/net"))
        try tree.link("/sys/class/net", to: tree.path("/nowhere"))
        #expect(try planned(tree, Self.nic).contains("cannot be checked: list "))
    }

    /// Under `--root`, an absolute link names the real host's files, not the tree's.
    @Test func aClassEntryLeadingOutOfTheRootKeepsTheNIC() throws {
        let tree = try tree()
        try tree.link("/sys/class/net/lo", to: "/sys/devices/virtual/net/lo")
        #expect(try planned(tree, Self.nic).contains("leads out of"))
    }

    @Test func aBlockDeviceNamedInBytesThatAreNotUTF8KeepsTheDisk() throws {
        let tree = try tree()
        let name = (Array(tree.path("/sys/class/block/p").utf8) + [0xFF, 0]).map { CChar(bitPattern: $0) }
        #expect(symlink(tree.path("/sys/bus/pci/devices/\(Self.nvme)/nvme/nvme0/nvme0n1p1"), name) == 0)
        #expect(try planned(tree, Self.nic).contains("block device p\\xff has a name that is not UTF-8"))
    }

    /// A holder named in bytes that are not UTF-8 holds the disk as much as `dm-0` does.
    @Test func aHolderNamedInBytesThatAreNotUTF8KeepsTheDisk() throws {
        let tree = try tree()
        try tree.file("/proc/self/mountinfo", "21 1 0:20 / / rw,relatime - tmpfs tmpfs rw\n")
        let holders = "/sys/bus/pci/devices/\(Self.nvme)/nvme/nvme0/nvme0n1/holders/dm-"
        let name = (Array(tree.path(holders).utf8) + [0xFF, 0]).map { CChar(bitPattern: $0) }
        #expect(mkdir(name, 0o755) == 0)
        #expect(try planned(tree, Self.nvme).contains("block device nvme0n1 is held by dm-\\xff"))
    }

    /// A disk's number is the kernel's `MAJOR:MINOR`; any other text (a carriage return,
    /// a space, a leading zero) could not be matched with mountinfo's, and keeps the disk.
    @Test(arguments: ["259:1\r", " 259:1", "259:01", "259", ""])
    func aDiskNumberNotOfTheKernelsFormKeepsTheDisk(number: String) throws {
        let tree = try tree()
        try tree.file("/proc/self/mountinfo", "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw\n")
        try tree.file("/sys/bus/pci/devices/\(Self.nvme)/nvme/nvme0/nvme0n1p1/dev", number + "\n")
        let line = try planned(tree, Self.nvme)
        #expect(line.contains("block device nvme0n1p1 has number"), "\(line)")
    }

    /// The kernel's own layout: devices below `/sys/devices`, each bus and class entry a
    /// relative link to one, read as written. The interface up, the mounted disk and an
    /// interface below a child device (virtio's `virtio0/net/`) are found; so is one whose
    /// link has a form no kernel link has (`.` inside), by following it; the loopback
    /// interface, up, is nobody's, and a NIC with no interface is taken.
    @Test func theKernelsRelativeLinksAreReadAsWritten() throws {
        let tree = try FakeSysfs()
        let devices = [
            (Self.nic, "8086:1593", "0x020000", "ice"), (Self.nvme, "144d:a80a", "0x010802", "nvme"),
            ("0000:05:00.0", "1af4:1041", "0x020000", "virtio-pci"), ("0000:06:00.0", "8086:1593", "0x020000", "ice"),
            ("0000:07:00.0", "8086:1593", "0x020000", "ice"), ("0000:08:00.0", "8086:1593", "0x020000", "ice"),
            ("0000:09:00.0", "144d:a80a", "0x010802", "nvme")
        ]
        try tree.mkdir("/sys/devices/pci0000:00")
        for (index, (address, id, classCode, driver)) in devices.enumerated() {
            try tree.device(address, id: id, class: classCode, driver: driver, group: 3 + index)
            #expect(
                rename(tree.path("/sys/bus/pci/devices/\(address)"), tree.path("/sys/devices/pci0000:00/\(address)"))
                    == 0)
            try tree.link("/sys/bus/pci/devices/\(address)", to: "../../../devices/pci0000:00/\(address)")
        }
        func interface(_ name: String, below place: String, link: String? = nil, flags: String = "0x1003") throws {
            try tree.mkdir("/sys/\(place)/net/\(name)")
            try tree.file("/sys/\(place)/net/\(name)/flags", flags + "\n")
            try tree.link("/sys/class/net/\(name)", to: link ?? "../../\(place)/net/\(name)")
        }
        try tree.mkdir("/sys/class/net")
        try interface("ens1f0", below: "devices/pci0000:00/\(Self.nic)")
        try interface("eth1", below: "devices/pci0000:00/0000:05:00.0/virtio0")
        try interface(
            "ens2", below: "devices/pci0000:00/0000:06:00.0", link: "../../devices/./pci0000:00/0000:06:00.0/net/ens2")
        try interface("lo", below: "devices/virtual", flags: "0x9")
        // Below a directory whose name begins with a combining mark (as characters, it joins
        // the "/" before it).
        try interface("eth5", below: "devices/pci0000:00/0000:08:00.0/\u{301}x")
        try tree.mkdir("/sys/class/block")
        var disk = "devices/pci0000:00/\(Self.nvme)/nvme/nvme0"
        for (name, number) in [("nvme0n1", "259:0"), ("nvme0n1p1", "259:1")] {
            disk += "/" + name
            try tree.mkdir("/sys/\(disk)/holders")
            try tree.file("/sys/\(disk)/dev", number + "\n")
            try tree.link("/sys/class/block/\(name)", to: "../../\(disk)")
        }
        // A link of the kernel's form to nothing, below the second NVMe: its disk cannot be told.
        try tree.link("/sys/class/block/nvme9n1", to: "../../devices/pci0000:00/0000:09:00.0/nvme/nvme9/nvme9n1")
        try tablesAndPolicy(tree)
        #expect(try planned(tree, "0000:08:00.0").contains("the host uses it: network interface eth5 is up"))
        #expect(try planned(tree, "0000:09:00.0").contains("holders: No such file or directory"))
        #expect(try planned(tree, Self.nic).contains("the host uses it: network interface ens1f0 is up"))
        #expect(try planned(tree, Self.nvme).contains("block device nvme0n1p1 is mounted on /"))
        #expect(try planned(tree, "0000:05:00.0").contains("the host uses it: network interface eth1 is up"))
        #expect(try planned(tree, "0000:06:00.0").contains("the host uses it: network interface ens2 is up"))
        let free = try planned(tree, "0000:07:00.0")
        #expect(!free.contains("refused"), "\(free)")
    }

    /// An NVMe subsystem whose name is not UTF-8 cannot be listed by its decoded name: the
    /// disks in it keep their controller's device (they were taken as gone). The class
    /// link to them is refused as it is read (EILSEQ), not where a decoded name fails.
    @Test func aMultipathSubsystemNamedInBytesThatAreNotUTF8KeepsTheDisk() throws {
        let tree = try FakeSysfs()
        try tree.device(Self.nvme, id: "144d:a80a", class: "0x010802", driver: "nvme", group: 4)
        try tree.mkdir("/sys/bus/pci/devices/\(Self.nvme)/nvme/nvme0")
        try tree.mkdir("/sys/devices/virtual/nvme-subsystem")
        let subsystem = "/sys/devices/virtual/nvme-subsystem/nvme-subsys"
        let raw = (Array(tree.path(subsystem).utf8) + [0xFF, 0]).map { CChar(bitPattern: $0) }
        #expect(mkdir(raw, 0o755) == 0)
        let decoded = subsystem + "\u{FFFD}"
        // Made through its bytes: each entry below the raw name, by a descriptor of it.
        let directory = open(raw, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(directory) }
        #expect(symlinkat(tree.path("/sys/bus/pci/devices/\(Self.nvme)/nvme/nvme0"), directory, "nvme0") == 0)
        #expect(mkdirat(directory, "nvme0n1", 0o755) == 0 && mkdirat(directory, "nvme0n1/holders", 0o755) == 0)
        let disk = openat(directory, "nvme0n1/dev", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        #expect(disk >= 0 && write(disk, "259:0\n", 6) == 6)
        close(disk)
        try tree.mkdir("/sys/class/block")
        var link = Array("../../devices/virtual/nvme-subsystem/nvme-subsys".utf8) + [0xFF]
        link += Array("/nvme0n1".utf8) + [0]
        #expect(symlink(link.map { CChar(bitPattern: $0) }, tree.path("/sys/class/block/nvme0n1")) == 0)
        try tablesAndPolicy(tree)
        try tree.file("/proc/self/mountinfo", "22 1 259:0 / / rw,relatime shared:1 - ext4 /dev/nvme0n1 rw\n")
        #expect(!FileManager.default.fileExists(atPath: tree.path(decoded)))
        let plan = try planned(tree, Self.nvme)
        #expect(plan.contains("sys/class/block/nvme0n1: "), "\(plan)")
        #expect(plan.contains("(EILSEQ): it leads to a name that is not UTF-8"), "\(plan)")
    }

    /// A followed path begins with the root's, which may itself hold the words an NVMe
    /// subsystem's place is found by: the namespace's subsystem is the last one named.
    @Test func aMultipathNamespaceIsFoundUnderARootNamedLikeASubsystem() throws {
        let parent = "/tmp/hotplug-agent-test-\(getpid())/nvme-subsystem/nvme-subsys7"
        defer { _ = try? FileManager.default.removeItem(atPath: "/tmp/hotplug-agent-test-\(getpid())") }
        let tree = try FakeSysfs(in: parent)
        try tree.device(Self.nvme, id: "144d:a80a", class: "0x010802", driver: "nvme", group: 4)
        try tree.mkdir("/sys/bus/pci/devices/\(Self.nvme)/nvme/nvme0")
        let subsystem = "/sys/devices/virtual/nvme-subsystem/nvme-subsys0"
        try tree.mkdir(subsystem)
        try tree.link(subsystem + "/nvme0", to: tree.path("/sys/bus/pci/devices/\(Self.nvme)/nvme/nvme0"))
        try tree.mkdir("/sys/class/block")
        var disk = subsystem
        for (name, number) in [("nvme0n1", "259:0"), ("nvme0n1p1", "259:1")] {
            disk += "/" + name
            try tree.mkdir(disk + "/holders")
            try tree.file(disk + "/dev", number + "\n")
            try tree.link("/sys/class/block/\(name)", to: tree.path(disk))
        }
        try tablesAndPolicy(tree)
        #expect(try planned(tree, Self.nvme).contains("block device nvme0n1p1 is mounted on /"))
    }
}
