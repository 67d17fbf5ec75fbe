import Foundation
import Glibc
import HostInterface
@testable import HotplugAgent
import Policy
import Testing

/// Under `--root`, nothing outside the tree is ever changed, whatever links the tree holds:
/// a link to `/sys` or `/dev`, absolute or climbing out with `..`, resolves inside the root
/// for every change (`openToChange`). Found by this round's attacker: a tree whose
/// `sys/bus/pci/drivers` or `dev/vfio` was an absolute link made `run --once --root` unbind
/// through, and chown a node in, the directory the link named.
struct RootConfinementTests {
    /// The tree, and beside it (outside the root) a directory its links lead to, holding
    /// a driver's `unbind`, a device's attributes and config, and a character node.
    func treeWithLinksOut() throws -> (tree: FakeSysfs, outside: FakeSysfs) {
        let tree = try FakeSysfs(), outside = try FakeSysfs()
        try outside.mkdir("/drivers/amdgpu")
        try outside.file("/drivers/amdgpu/unbind", "")
        try outside.mkdir("/device")
        try outside.file("/device/d3cold_allowed", "1\n")
        try outside.file("/device/config", String(repeating: "\0", count: 64))
        try outside.mkdir("/vfio")
        try outside.characterNode("/vfio/5")
        // Absolute links out of the root, and one that climbs out with `..`.
        try tree.link("/sys/bus/pci/drivers/amdgpu", to: outside.path("/drivers/amdgpu"))
        try tree.link("/sys/bus/pci/devices/0000:03:00.0", to: outside.path("/device"))
        // Up to `/` from `<root>/sys/bus/pci/devices` (more `..` stay at `/`), then down.
        let climb = String(repeating: "../", count: tree.root.split(separator: "/").count + 6)
        try tree.link("/sys/bus/pci/devices/0000:04:00.0", to: climb + String(outside.path("/device").dropFirst()))
        try FileManager.default.removeItem(atPath: tree.path("/dev/vfio"))
        try tree.link("/dev/vfio", to: outside.path("/vfio"))
        return (tree, outside)
    }

    @Test(.enabled(if: runningAsRoot, "mknod needs root"))
    func noChangeLeavesTheRoot() throws {
        let (tree, outside) = try treeWithLinksOut()
        let io = RealKernelIO(paths: HostPaths(root: tree.root))
        #expect(throws: IOFailure.self) {
            try io.write(tree.path("/sys/bus/pci/drivers/amdgpu/unbind"), "0000:03:00.0")
        }
        for device in ["0000:03:00.0", "0000:04:00.0"] {
            let base = tree.path("/sys/bus/pci/devices/\(device)")
            #expect(throws: IOFailure.self) { try io.write(base + "/d3cold_allowed", "0") }
            #expect(throws: IOFailure.self) { try io.write(beneath: base, "d3cold_allowed", "0") }
            #expect(throws: IOFailure.self) { try io.writeBytes(base + "/config", offset: 4, [0x07]) }
        }
        #expect(throws: IOFailure.self) {
            try io.setNodeAccess(tree.path("/dev/vfio/5"), uid: 4242, gid: 4242, mode: 0o666)
        }
        #expect(throws: IOFailure.self) {
            _ = try io.grantNodeAccess(tree.path("/dev/vfio/5"), users: [4242], groups: [])
        }
        #expect(try outside.read("/drivers/amdgpu/unbind") == "")
        #expect(try outside.read("/device/d3cold_allowed") == "1\n")
        #expect(try outside.read("/device/config") == String(repeating: "\0", count: 64))
        let node = outside.stat("/vfio/5")
        #expect(node.st_uid == 0 && node.st_gid == 0 && node.st_mode & 0o777 == 0o600)
        // Reading still follows the tree's links, as the kernel does.
        #expect(try io.read(tree.path("/sys/bus/pci/devices/0000:03:00.0/d3cold_allowed")) == "1\n")
    }

    /// The same changes inside the tree, through links that stay in it, are made as before;
    /// on the real root nothing is opened another way.
    @Test(.enabled(if: runningAsRoot, "mknod needs root"))
    func changesInsideTheRootAreMade() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:03:00.0", id: "1002:73bf", driver: "amdgpu", group: 5)
        try tree.file("/sys/bus/pci/drivers/amdgpu/unbind", "")
        try tree.file("/sys/bus/pci/devices/0000:03:00.0/config", String(repeating: "\0", count: 64))
        try tree.characterNode("/dev/vfio/5")
        // An absolute link that names a place inside the tree as the tree's own `/`: one this
        // host does not have, so that were it followed from the host's `/`, nothing is there.
        let own = "/hotplug-agent-test-own-\(getpid())"
        #expect(access(own, F_OK) != 0)
        try tree.link(own, to: "sys/bus/pci/devices/0000:03:00.0")
        try tree.link("/sys/bus/pci/devices/0000:03:00.1", to: own)
        let io = RealKernelIO(paths: HostPaths(root: tree.root))
        try io.write(tree.path("/sys/bus/pci/drivers/amdgpu/unbind"), "0000:03:00.0")
        try io.write(tree.path("/sys/bus/pci/devices/0000:03:00.1/driver_override"), "vfio-pci")
        try io.write(beneath: tree.path("/sys/bus/pci/devices/0000:03:00.0"), "enable", "1")
        try io.writeBytes(tree.path("/sys/bus/pci/devices/0000:03:00.0/config"), offset: 4, [0x07])
        try io.setNodeAccess(tree.path("/dev/vfio/5"), uid: 4242, gid: 4242, mode: 0o660)
        #expect(try tree.read("/sys/bus/pci/drivers/amdgpu/unbind") == "0000:03:00.0")
        #expect(try tree.read("/sys/bus/pci/devices/0000:03:00.0/driver_override") == "vfio-pci")
        #expect(try tree.read("/sys/bus/pci/devices/0000:03:00.0/enable") == "1")
        #expect(Array(try tree.read("/sys/bus/pci/devices/0000:03:00.0/config").utf8)[4] == 0x07)
        #expect(tree.stat("/dev/vfio/5").st_uid == 4242)
        #expect(RealKernelIO(paths: HostPaths(root: "/")).heldRoot == nil)
    }

    /// The origin store checks its kept directory at the path as its walk resolves it, below
    /// the root: with the tree's `run` an absolute link, its `stat` looked on this host's
    /// path, found nothing, and no record was ever removed (found by this round's attacker:
    /// a device bound by hand later was "put back" on a move the agent never made).
    @Test func recordsBelowARootLinkedAbsolutelyAreRemoved() throws {
        let tree = try FakeSysfs()
        let elsewhere = "/hotplug-agent-test-run-\(getpid())"
        #expect(access(elsewhere, F_OK) != 0)
        try tree.mkdir(elsewhere)
        try tree.link("/run", to: elsewhere)
        let address = try #require(PCIAddress("0000:03:00.0"))
        let store = OriginStore(stateDirectory: tree.path("/run/hotplug-agent"), root: tree.root, writable: true)
        try store.save(address, DriverOrigin(driver: "amdgpu", override: nil, movedTo: "vfio-pci"))
        var status = stat()
        #expect(lstat(tree.path(elsewhere + "/hotplug-agent/origins/\(address)"), &status) == 0)
        store.remove(address)
        #expect(lstat(tree.path(elsewhere + "/hotplug-agent/origins/\(address)"), &status) != 0, "the record stayed")
        #expect(access(elsewhere, F_OK) != 0)
    }

    /// A module goes into this host's kernel, outside any tree: under a root, none is loaded,
    /// whatever modprobe is named (the attacker's `HOTPLUG_AGENT_MODPROBE` ran under `--root`).
    @Test func noModuleIsLoadedUnderARoot() throws {
        let tree = try FakeSysfs()
        try tree.file("/modprobe", "#!/bin/sh\ntouch \(tree.path("/loaded"))\n")
        chmod(tree.path("/modprobe"), 0o755)
        let io = RealKernelIO(paths: HostPaths(root: tree.root), modprobe: tree.path("/modprobe"))
        #expect(io.modprobe == nil)
        #expect(throws: IOFailure.self) { try io.loadModule("vfio_pci") }
        #expect(access(tree.path("/loaded"), F_OK) != 0)
    }
}
