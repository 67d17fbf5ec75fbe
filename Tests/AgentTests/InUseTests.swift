import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Policy
import Testing

/// Nothing the host uses is taken from it: interfaces that are up, disks that are mounted,
/// swapping or held by device-mapper, nor a group claim-group would take them with.
struct InUseTests {
    let everything = """
        [[policy]]
        name = "everything"
        match.ids = ["*:*"]
        driver = "vfio-pci"
        """

    @Test func aPolicyMatchingEveryDeviceLeavesTheHostNICAndDiskAndSaysWhy() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: everything)
        let lines = try host.planLines()
        #expect(
            lines.contains(
                "  refused: unbind ice: the host uses it: network interface ens1f0 is up (allow-in-use = true allows "
                    + "it)"
            ))
        #expect(
            lines.contains(
                "  refused: unbind nvme: the host uses it: block device nvme0n1p1 is mounted on /boot/efi, "
                    + "block device nvme0n1p2 is mounted on /, block device nvme0n1p3 is used as swap (allow-in-use = "
                    + "true allows it)"
            ))
        #expect(host.runOnce())
        #expect(host.device("0000:03:00.0")?.driver == "ice")
        #expect(host.device("0000:04:00.0")?.driver == "nvme")
        #expect(!host.history.contains { $0.contains("0000:03:00.0") || $0.contains("0000:04:00.0") })
        #expect(host.addresses { $0.driver == "vfio-pci" }.count == 16)
        #expect(
            host.addresses { $0.classCode >> 8 == 0x0600 || $0.classCode >> 8 == 0x0604 }.allSatisfy {
                host.device($0)?.override == nil
            })
    }

    /// Not knowing is not "free": a NIC whose own place in sysfs can be neither read from
    /// its link nor resolved while interfaces are there to compare is refused, never taken
    /// as unused.
    @Test func aDeviceWhoseUseCannotBeCheckedIsRefused() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: everything)
        host.kernel.failReadingLink("/sys/bus/pci/devices/0000:03:00.0")
        host.kernel.failResolving("/sys/bus/pci/devices/0000:03:00.0")
        let lines = try host.planLines()
        let refusal = try #require(
            lines.first {
                $0.hasPrefix(
                    "  refused: unbind ice: the host uses it: whether its network interfaces and block devices "
                        + "are in use cannot be checked: ")
            }, "\(lines)")
        // Said once, though both an interface and the disks were to be compared with it.
        #expect(refusal.components(separatedBy: "cannot be checked").count == 2, "\(refusal)")
        #expect(host.runOnce())
        #expect(host.device("0000:03:00.0")?.driver == "ice")
    }

    /// Every read the answer rests on fails closed: the interfaces that cannot be listed,
    /// an interface that is there and cannot be followed, flags that cannot be read. Each
    /// used to read as "no interface up", and the NIC was taken with its link up.
    @Test(arguments: [
        ("/sys/class/net", "list /sys/class/net: Input/output error (EIO)"),
        ("/sys/class/net/ens1f0/flags", "read /sys/class/net/ens1f0/flags: Input/output error (EIO)")
    ])
    func aNICWhoseInterfacesCannotBeReadIsRefused(path: String, failure: String) throws {
        let host = try SimHost("seed-000-mi300x.json", policies: everything)
        host.kernel.failReading(path)
        let lines = try host.planLines()
        #expect(
            lines.contains(
                "  refused: unbind ice: the host uses it: whether its network interfaces and block devices are in "
                    + "use cannot be checked: \(failure) (allow-in-use = true allows it)"), "\(lines)")
        #expect(host.runOnce())
        #expect(host.device("0000:03:00.0")?.driver == "ice")
    }

    /// Links of the kernel's own form are read, never followed (an `O_PATH` open, a name
    /// asked of `/proc` and a close each, on a real host): the check of the NIC and disk
    /// resolves nothing, and still finds what it found.
    /// A class link of the kernel's form is joined with its directory in bytes, as the kernel
    /// splits paths: a name that begins with a combining mark is still a name of its own.
    @Test func aKernelLinkIsJoinedWithItsDirectoryInBytes() {
        let place = { (target: String, directory: String) in HostUse.Places.kernelPlace(target, from: directory) }
        #expect(
            place("../../devices/pci0000:00/0000:03:00.0/net/eth0", "class/net")
                == "devices/pci0000:00/0000:03:00.0/net/eth0")
        #expect(
            place("../../devices/pci0000:00/0000:03:00.0/net/\u{301}x", "class/net")
                == "devices/pci0000:00/0000:03:00.0/net/\u{301}x")
        for target in [
            "/sys/devices/pci0000:00/eth0", "../../devices/./eth0", "../../devices//eth0", "../../devices/../x",
            "../../../../devices/x", "../../virtual/x", "../..", "../../devices", "../../devices/x/"
        ] {
            #expect(place(target, "class/net") == nil, "\(target)")
        }
        let use = HostUse(
            io: RealKernelIO(paths: HostPaths(root: "/")), paths: HostPaths(root: "/"), vfio: VFIODrivers())
        #expect(
            use.nvmeSubsystem(of: "/r/nvme-subsystem/nvme-subsys1/x/nvme-subsystem/nvme-subsys12/nvme0n1")
                == "/r/nvme-subsystem/nvme-subsys1/x/nvme-subsystem/nvme-subsys12")
        #expect(
            use.nvmeSubsystem(of: "/sys/devices/virtual/nvme-subsystem/nvme-subsys0")
                == "/sys/devices/virtual/nvme-subsystem/nvme-subsys0")
        #expect(use.nvmeSubsystem(of: "/sys/devices/virtual/nvme-subsystem/") == nil)
        #expect(use.nvmeSubsystem(of: "") == nil)
    }

    @Test func classEntriesAreReadAsTheKernelWroteThemNotFollowed() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: everything)
        let (agent, counting) = host.countingAgent()
        #expect(agent.runOnce(events: host.kernel))
        #expect(counting.operations.contains("readlink /sys/class/net/ens1f0"))
        #expect(counting.operations.contains("readlink /sys/class/block/nvme0n1p2"))
        let resolved = counting.operations.filter { $0.hasPrefix("realpath ") }
        #expect(resolved.isEmpty, "\(resolved)")
        #expect(host.device("0000:03:00.0")?.driver == "ice")
        #expect(host.device("0000:04:00.0")?.driver == "nvme")
    }

    /// A link that cannot be read is followed instead: the interface is still found.
    @Test func aClassLinkThatCannotBeReadIsFollowed() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: everything)
        host.kernel.failReadingLink("/sys/class/net/ens1f0")
        host.kernel.failReadingLink("/sys/bus/pci/devices/0000:03:00.0")
        let lines = try host.planLines()
        #expect(
            lines.contains(
                "  refused: unbind ice: the host uses it: network interface ens1f0 is up (allow-in-use = true allows "
                    + "it)"), "\(lines)")
    }

    @Test func anInterfaceThatCannotBeFollowedRefusesTheNIC() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: everything)
        host.kernel.failReadingLink("/sys/class/net/ens1f0")
        host.kernel.failResolving("/sys/class/net/ens1f0")
        let lines = try host.planLines()
        #expect(
            lines.contains(
                "  refused: unbind ice: the host uses it: whether its network interfaces and block devices are in "
                    + "use cannot be checked: realpath /sys/class/net/ens1f0: Input/output error (EIO) "
                    + "(allow-in-use = true allows it)"),
            "\(lines)")
        #expect(host.runOnce())
        #expect(host.device("0000:03:00.0")?.driver == "ice")
    }

    /// A mount table that cannot be read is no proof a disk is unmounted.
    @Test func aDiskIsRefusedWhileTheMountTableCannotBeRead() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: everything)
        host.kernel.failReading("/proc/self/mountinfo")
        let lines = try host.planLines()
        #expect(
            lines.contains {
                $0.hasPrefix("  refused: unbind nvme: the host uses it: ")
                    && $0.contains("cannot be checked: read /proc/self/mountinfo: Input/output error (EIO)")
            }, "\(lines)")
    }

    @Test func allowInUseTakesTheNICButStillNotTheBootGPU() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: everything + "\nallow-in-use = true")
        #expect(host.runOnce())
        #expect(host.device("0000:03:00.0")?.driver == "vfio-pci")
        #expect(host.device("0000:02:00.0")?.driver == "ast")
    }

    @Test func aGroupWithAnInterfaceThatIsUpIsNotClaimed() throws {
        let host = try SimHost(
            "seed-003-power9.json",
            policies: """
                [[policy]]
                name = "second-port"
                match.slots = ["0003:01:00.1"]
                driver = "vfio-pci"
                claim-group = true
                """)
        let lines = try host.planLines()
        #expect(
            lines.contains(
                "  refused: unbind tg3: claim-group would take 0003:01:00.0, which the host uses: "
                    + "network interface enP3p1s0f0 is up (allow-in-use = true allows it)"))
        #expect(host.runOnce())
        #expect(host.device("0003:01:00.0")?.driver == "tg3" && host.device("0003:01:00.1")?.driver == "tg3")
    }

    @Test func anInterfaceThatIsDownIsNotInUse() throws {
        let host = try SimHost(
            "seed-003-power9.json",
            policies: """
                [[policy]]
                name = "second-port"
                match.slots = ["0003:01:00.1"]
                driver = "pci-stub"
                """)
        #expect(host.runOnce())
        #expect(host.device("0003:01:00.1")?.driver == "pci-stub")
        #expect(host.device("0003:01:00.0")?.driver == "tg3")
    }

    @Test func aDiskHeldByDeviceMapperIsInUse() throws {
        let host = try SimHost(
            "seed-003-power9.json",
            policies: """
                [[policy]]
                name = "sata"
                match.class = ["0106"]
                driver = "vfio-pci"
                """)
        let lines = try host.planLines()
        #expect(
            lines.contains {
                $0.contains(
                    "block device sda1 is mounted on /boot, block device sda2 is held by dm-0, block device sda2 is "
                        + "held by dm-1"
                )
            })
        #expect(host.runOnce())
        #expect(host.device("0000:01:00.0")?.driver == "ahci")
    }

    @Test func hostBridgesAreNeverClaimedEither() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: everything)
        #expect(host.runOnce())
        #expect(host.device("0000:00:00.0")?.driver == nil && host.device("0000:00:00.0")?.override == nil)
    }

    /// The seed-000 host with its NVMe boot disk laid out by `disks`.
    func nvmeHost(_ disks: [HostDescription.Disk]) throws -> SimHost {
        var description = try SimHost.load("seed-000-mi300x.json")
        let index = try #require(description.devices.firstIndex { $0.address == "0000:04:00.0" })
        description.devices[index].block = disks
        return try SimHost(description, policies: everything)
    }

    func expectNVMeKept(_ host: SimHost, because reason: String) throws {
        let lines = try host.planLines()
        #expect(
            lines.contains("  refused: unbind nvme: the host uses it: \(reason) (allow-in-use = true allows it)"),
            "\(lines.filter { $0.contains("nvme") })")
        #expect(host.runOnce())
        #expect(host.device("0000:04:00.0")?.driver == "nvme" && host.device("0000:04:00.0")?.override == nil)
        #expect(!host.history.contains { $0.contains("0000:04:00.0") })
    }

    @Test func aBtrfsRootIsFoundByItsSourceThoughItsNumberIsAnonymous() throws {
        let host = try nvmeHost([
            HostDescription.Disk(name: "nvme0n1", dev: "259:0"),
            HostDescription.Disk(name: "nvme0n1p2", dev: "259:2", mounted: "/", fstype: "btrfs")
        ])
        #expect(host.kernel.inspect(\.mountInfo).contains(" 0:"))
        try expectNVMeKept(host, because: "block device nvme0n1p2 is mounted on /")
    }

    @Test func aZFSPoolIsFoundByTheKernelsAnswerToAnExclusiveOpen() throws {
        // ZFS: an anonymous number, the pool as the source, no holders links.
        let host = try nvmeHost([
            HostDescription.Disk(
                name: "nvme0n1", dev: "259:0", mounted: "/", exclusive: true, fstype: "zfs", source: "rpool/ROOT/debian"
            )
        ])
        try expectNVMeKept(
            host,
            because:
                "block device nvme0n1 is open exclusively (EBUSY): a filesystem, ZFS, md, dm or another program holds "
                + "it"
        )
    }

    @Test func aNamespaceOpenedExclusivelyByAProgramIsInUse() throws {
        let host = try nvmeHost([HostDescription.Disk(name: "nvme0n1", dev: "259:0", exclusive: true)])
        try expectNVMeKept(
            host,
            because:
                "block device nvme0n1 is open exclusively (EBUSY): a filesystem, ZFS, md, dm or another program holds "
                + "it"
        )
    }

    @Test func aNamespaceTheAgentMayNotOpenIsTreatedAsInUse() throws {
        // A device cgroup that leaves block devices out answers EPERM: that is no "free".
        let host = try nvmeHost([HostDescription.Disk(name: "nvme0n1", dev: "259:0", probeDenied: "EPERM")])
        try expectNVMeKept(
            host,
            because: "block device nvme0n1 cannot be checked for exclusive use (open: EPERM): it may be a ZFS vdev")
    }

    @Test func aNativeMultipathNamespaceIsMappedBackToItsController() throws {
        // nvme0n1 lives below /sys/devices/virtual/nvme-subsystem/nvme-subsys0, not below the
        // function; its subsystem's controller link nvme0 leads back to the function.
        let host = try nvmeHost([
            HostDescription.Disk(name: "nvme0n1", dev: "259:0", multipath: "nvme-subsys0", controller: "nvme0"),
            HostDescription.Disk(
                name: "nvme0n1p1", dev: "259:1", holders: ["dm-0"], multipath: "nvme-subsys0", controller: "nvme0")
        ])
        let real = try host.kernel.resolve(host.kernel.paths.classBlock + "/nvme0n1")
        #expect(real == "/sys/devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1")
        try expectNVMeKept(host, because: "block device nvme0n1p1 is held by dm-0")
    }

    @Test func mountinfoFieldsAreUnescaped() {
        let mounts = Mounts(
            mountInfo: "36 1 0:42 / /mnt/my\\040disk rw - btrfs /dev/nvme0n1p2 rw,space_cache\n"
                + "37 1 0:43 / /data rw shared:5 - bcachefs /dev/sda:/dev/sdb rw\n")
        #expect(mounts.mountPoint(number: "259:2", node: "/dev/nvme0n1p2") == "/mnt/my disk")
        #expect(mounts.mountPoint(number: "8:16", node: "/dev/sdb") == "/data")
        #expect(mounts.mountPoint(number: "8:32", node: "/dev/sdc") == nil)
        // An escape after a character that joins the backslash is still an escape.
        let joined = Mounts(mountInfo: "38 1 8:48 / /media/a\u{600}\\040b rw - ext4 /dev/sdd rw\n")
        #expect(joined.mountPoint(number: "8:48", node: "/dev/sdd") == "/media/a\u{600} b")
    }

    /// Fields are split on the space byte, and a source on the `:` byte: a field or a device
    /// that begins with a combining mark (a file system type, a source, as named by whoever
    /// mounted it) does not join the one before it.
    @Test func aFieldBeginningWithACombiningMarkStaysAField() {
        let mounts = Mounts(
            mountInfo: "36 1 0:44 / /srv rw - \u{301}fs /dev/sdc rw\n"
                + "37 1 0:43 / /data rw - bcachefs /dev/sdb:\u{301}x rw\n")
        #expect(mounts.mountPoint(number: "8:32", node: "/dev/sdc") == "/srv")
        #expect(mounts.mountPoint(number: "8:16", node: "/dev/sdb") == "/data")
    }
}
