import Foundation
import Glibc
import HostInterface
@testable import HotplugAgent
import Policy
@testable import Simulation
import Testing

/// Changing a PF's VF count destroys every VF: without `allow-in-use` it is refused while
/// the host uses one, and a VF on a network driver whose interface the host's namespace
/// does not show counts as used (SR-IOV CNI moved it into a pod's namespace). On the real
/// file layer, through the built binary.
struct VFInUseTests {
    static let pf = "0000:3b:00.0", vf0 = "0000:3b:00.2", vf1 = "0000:3b:00.3"

    func tree(vf0Interface: Bool, allowInUse: Bool = false) throws -> FakeSysfs {
        let tree = try FakeSysfs()
        try tree.device(Self.pf, id: "15b3:1017", class: "0x020000", driver: "mlx5_core", group: 30)
        let pfDir = "/sys/bus/pci/devices/\(Self.pf)"
        for (name, value) in [("sriov_totalvfs", "8"), ("sriov_numvfs", "2"), ("sriov_drivers_autoprobe", "1")] {
            try tree.file("\(pfDir)/\(name)", value + "\n")
        }
        for (index, vf) in [Self.vf0, Self.vf1].enumerated() {
            try tree.device(vf, id: "15b3:1018", class: "0x020000", driver: "mlx5_core", group: 31 + index)
            try tree.link("\(pfDir)/virtfn\(index)", to: "../\(vf)")
            try tree.link("/sys/bus/pci/devices/\(vf)/physfn", to: "../\(Self.pf)")
        }
        // VF 1 shows its interface, down; VF 0's is in a pod's namespace unless asked for.
        try tree.mkdir("/sys/class/net")
        for (vf, name, flags) in [(Self.vf1, "eth1", "0x1002")] + (vf0Interface ? [(Self.vf0, "eth0", "0x1003")] : []) {
            try tree.mkdir("/sys/bus/pci/devices/\(vf)/net/\(name)")
            try tree.file("/sys/bus/pci/devices/\(vf)/net/\(name)/flags", flags + "\n")
            try tree.link("/sys/class/net/\(name)", to: tree.path("/sys/bus/pci/devices/\(vf)/net/\(name)"))
        }
        try tree.mkdir("/p")
        try tree.file(
            "/p/50.toml",
            """
            [[policy]]
            name = "cx5"
            match.ids = ["15b3:1017"]
            sriov.num-vfs = 4
            allow-in-use = \(allowInUse)
            """)
        return tree
    }

    func plan(_ tree: FakeSysfs) throws -> [String] {
        let result = try Binary.run(["plan", "--root", tree.root, "--policy-dir", tree.path("/p")])
        #expect(result.status == 0, "\(result.stderr)")
        return result.stdout.split(separator: "\n").map(String.init)
    }

    @Test func aVFWhoseInterfaceMovedToAPodKeepsTheCount() throws {
        let lines = try plan(try tree(vf0Interface: false))
        #expect(
            lines.contains(
                "  refused: set sriov_numvfs to 4: the host uses its VFs: VF \(Self.vf0): it is bound to mlx5_core and "
                    + "shows no network interface here: its interface is in another network namespace (a container's); "
                    + "changing the count would destroy them (allow-in-use = true allows it)"
            ), "\(lines)")
    }

    @Test func aVFWithItsInterfaceUpKeepsTheCount() throws {
        let lines = try plan(try tree(vf0Interface: true))
        #expect(
            lines.contains(
                "  refused: set sriov_numvfs to 4: the host uses its VFs: VF \(Self.vf0): network interface eth0 is "
                    + "up; changing the count would destroy them (allow-in-use = true allows it)"
            ), "\(lines)")
    }

    @Test func allowInUseChangesItThroughZero() throws {
        let lines = try plan(try tree(vf0Interface: true, allowInUse: true))
        #expect(lines.contains { $0.hasPrefix("  set sriov_numvfs to 0") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("  set sriov_numvfs to 4") }, "\(lines)")
    }
    /// Links the kernel makes, made here with targets that are not UTF-8: a VF whose `driver`
    /// link, or a PF whose `virtfnN` link, cannot be read is a VF that cannot be checked,
    /// and the count is kept; never a VF passed over as free.
    @Test(arguments: ["driver", "virtfn"])
    func aVFWhoseLinkCannotBeReadKeepsTheCount(broken: String) throws {
        let tree = try tree(vf0Interface: broken == "virtfn")
        let (path, target) =
            broken == "driver"
            ? ("/sys/bus/pci/devices/\(Self.vf0)/driver", "../../../bus/pci/drivers/mlx5_cor")
            : ("/sys/bus/pci/devices/\(Self.pf)/virtfn0", "../\(Self.vf0)")
        #expect(unlink(tree.path(path)) == 0)
        #expect(symlink((Array(target.utf8) + [0xFF, 0]).map { CChar(bitPattern: $0) }, tree.path(path)) == 0)
        let lines = try plan(tree)
        #expect(!lines.contains { $0.hasPrefix("  set sriov_numvfs") }, "\(lines)")
        // The VF whose PF link cannot be read may be a VM's too: that is asked first.
        let (prefix, reason) =
            broken == "driver"
            ? ("  refused: set sriov_numvfs to 4: the host uses its VFs: ",
               "VF \(Self.vf0): whether its interface is in another network namespace cannot be checked: readlink ")
            : ("  waiting: set sriov_numvfs to 4: ", "whether a VM holds a VF cannot be checked: readlink ")
        let line = lines.first { $0.hasPrefix(prefix) }
        #expect(line?.contains(reason) == true, "\(lines)")
        #expect(line?.contains("(EILSEQ): it leads to a name that is not UTF-8") == true, "\(lines)")
    }

    /// Where /proc does not name a descriptor's path (masked, as in some sandboxes), the
    /// interface is still found below its device: resolving falls back to realpath().
    @Test(.enabled(if: runningAsRoot, "a private mount namespace"))
    func anInterfaceUpIsFoundWithProcSelfFdMasked() throws {
        let tree = try tree(vf0Interface: true)
        try tree.mkdir("/empty")
        let script =
            "mount --bind \(tree.path("/empty")) /proc/$$/fd && exec \(Binary.path) plan --root \(tree.root) "
            + "--policy-dir \(tree.path("/p"))"
        let result = try Binary.run(
            ["-m", "--propagation", "private", "sh", "-c", script], executable: "/usr/bin/unshare")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("VF \(Self.vf0): network interface eth0 is up"), "\(result.stdout)")
    }
    /// An interface an admin named with bytes that are not UTF-8 cannot be followed by
    /// name: no device is taken from its driver while one exists on the host, whoever's it
    /// is (a USB NIC's is below its xHCI controller, a GPU's below the GPU).
    @Test func anInterfaceWhoseNameIsNotUTF8KeepsTheNIC() throws {
        let tree = try tree(vf0Interface: false)
        try tree.file(
            "/p/60.toml",
            """
            [[policy]]
            name = "pf"
            match.ids = ["15b3:1017"]
            driver = "vfio-pci"
            """)
        try FileManager.default.removeItem(atPath: tree.path("/p/50.toml"))
        // eth<0xff><0xfe>, up, below the PF, and its /sys/class/net link.
        func raw(_ path: String) -> [CChar] {
            (Array(tree.path(path).utf8) + [0xFF, 0xFE, 0]).map { CChar(bitPattern: $0) }
        }
        try tree.mkdir("/sys/bus/pci/devices/\(Self.pf)/net")
        let interface = raw("/sys/bus/pci/devices/\(Self.pf)/net/eth")
        #expect(mkdir(interface, 0o755) == 0)
        let fd = open(Array(interface.dropLast()) + Array("/flags".utf8CString), O_WRONLY | O_CREAT, 0o644)
        #expect(fd >= 0 && write(fd, "0x1003\n", 7) == 7)
        close(fd)
        #expect(symlink(interface, raw("/sys/class/net/eth")) == 0)
        let lines = try plan(tree)
        #expect(
            lines.contains {
                $0.contains("the host uses it: network interface eth\\xff\\xfe has a name that is not UTF-8")
            }, "\(lines)")
        #expect(!lines.contains { $0.hasPrefix("  bind to vfio-pci") }, "\(lines)")
    }

    /// Whether a PF's VFs are in use is one look for all of them: on a host with many
    /// interfaces, a count change on a PF with many VFs reads each interface's link once,
    /// not once per VF (some 2,000 operations here, 120,000 with 256 VFs and 500 interfaces).
    @Test func theVFsOfAPFAreCheckedInOneLook() throws {
        let tree = try FakeSysfs()
        let (pf, nic, vfs, interfaces) = ("0000:3b:00.0", "0000:5e:00.0", 32, 64)
        try tree.device(pf, id: "15b3:1017", class: "0x020000", driver: "mlx5_core", group: 30)
        try tree.device(nic, id: "8086:1593", class: "0x020000", driver: "ice", group: 40)
        for index in 0..<vfs {
            let vf = "0000:3b:\(hex(1 + index / 8, width: 2)).\(index % 8)"
            let driver = vf == "0000:3b:01.1" ? "mlx5_core" : "vfio-pci"
            try tree.device(vf, id: "15b3:1018", class: "0x020000", driver: driver, group: 100 + index)
            try tree.link("/sys/bus/pci/devices/\(pf)/virtfn\(index)", to: "../\(vf)")
            try tree.link("/sys/bus/pci/devices/\(vf)/physfn", to: "../\(pf)")
        }
        // The host's interfaces are all another NIC's; one VF, on its host driver, shows its own, up.
        try tree.mkdir("/sys/class/net")
        for (device, name, flags) in (0..<interfaces).map({ (nic, "eth\($0)", "0x1003") })
            + [("0000:3b:01.1", "vf1", "0x1003")]
        {
            try tree.mkdir("/sys/bus/pci/devices/\(device)/net/\(name)")
            try tree.file("/sys/bus/pci/devices/\(device)/net/\(name)/flags", flags + "\n")
            try tree.link("/sys/class/net/\(name)", to: "../../bus/pci/devices/\(device)/net/\(name)")
        }
        let paths = HostPaths(root: tree.root)
        let io = CountingKernelIO(RealKernelIO(paths: paths))
        let use = HostUse(io: io, paths: paths, vfio: VFIODrivers()).vfsInUse(of: PCIAddress(pf)!)
        #expect(use == ["VF 0000:3b:01.1: network interface vf1 is up"], "\(use)")
        // Each interface and VF a handful of times, not VFs x interfaces (2,080 links followed).
        #expect(io.tally.values.reduce(0, +) <= 5 * (vfs + interfaces), "\(io.tally)")
    }

    /// An entry that cannot be followed may be any VF's: each VF is told so, not only the
    /// first that compared with it (found by the attacker of the one look).
    @Test func anEntryThatCannotBeFollowedIsEveryVFsReason() throws {
        let tree = try FakeSysfs()
        let pf = "0000:3b:00.0", vfs = ["0000:3b:00.2", "0000:3b:00.3", "0000:3b:00.4"]
        try tree.device(pf, id: "15b3:1017", class: "0x020000", driver: "mlx5_core", group: 30)
        for (index, vf) in vfs.enumerated() {
            try tree.device(vf, id: "15b3:1018", class: "0x020000", driver: "vfio-pci", group: 31 + index)
            try tree.link("/sys/bus/pci/devices/\(pf)/virtfn\(index)", to: "../\(vf)")
        }
        try tree.mkdir("/sys/class/net")
        try tree.link("/sys/class/net/ghost", to: "../../devices/pci0000:00/0000:99:00.0/net/ghost")
        let paths = HostPaths(root: tree.root)
        let use = HostUse(io: RealKernelIO(paths: paths), paths: paths, vfio: VFIODrivers())
            .vfsInUse(of: PCIAddress(pf)!)
        for vf in vfs {
            #expect(use.contains { $0.hasPrefix("VF \(vf): ") && $0.contains("class/net/ghost") }, "\(use)")
        }
    }
}
