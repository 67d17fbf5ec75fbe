import HostInterface
import Policy

/// Who holds what: processes holding `/dev/vfio/<group>` open or a device's descriptor (a
/// VMM), and the kernel's
/// answer to an unbind or a VF teardown meanwhile: it blocks until they let go
/// (`vfio_unregister_group_dev()` relays the request to the user and waits).
extension SimulatedState {
    /// The device number of `/dev/vfio/<group>` in the simulation.
    static func vfioDeviceNumber(_ group: Int) -> UInt64 { 0xF000_0000 | UInt64(group) }

    /// Whether a user has the device open through its VFIO driver (the `enable` count is
    /// not 0): its group node held, or a descriptor or mapping of it, whatever became of
    /// the group node.
    func isOpenThroughVFIO(_ device: Device) -> Bool {
        guard isVFIO(device.driver) else { return false }
        if otherHolds.contains(where: { $0.device == device.address }) { return true }
        return device.group.map { !(nodeOpeners[$0] ?? []).isEmpty } ?? false
    }

    /// Whether a write would block in the kernel now: unbinding a device from its VFIO
    /// driver while its group node is held, or removing VFs (sriov_numvfs 0) of which one's
    /// node is held.
    func blocksWhileHeld(_ path: SimulatedPath, _ value: String) -> Bool {
        func held(_ address: PCIAddress) -> Bool { devices[address].map(isOpenThroughVFIO) ?? false }
        switch path {
        case .driverFile(_, "unbind"):
            return PCIAddress(firstLine(value)).map(held) ?? false
        case .deviceFile(let address, "driver/unbind"):
            return held(address)
        case .deviceFile(let address, "sriov_numvfs"):
            return firstLine(value) == "0" && vfs(of: address).contains(where: held)
        default:
            return false
        }
    }

    /// Disks of host-driven devices that belong to an NVMe subsystem, and its controllers.
    func nvmeSubsystem(_ name: String) -> (controllers: [(PCIAddress, String)], namespaces: [String]) {
        var controllers: [(PCIAddress, String)] = []
        var namespaces: [String] = []
        for address in hostUsers.sorted() {
            guard let device = devices[address], device.hostDriverHasIt else { continue }
            for disk in device.disks where disk.multipath == name {
                if let controller = disk.controller, !controllers.contains(where: { $0.1 == controller }) {
                    controllers.append((address, controller))
                }
                // Namespaces (`nvme0n1`) stand in the subsystem's directory; partitions within them.
                if !disk.name.dropFirst(4).contains("p") { namespaces.append(disk.name) }
            }
        }
        return (controllers, namespaces)
    }

    /// `/proc/self/mountinfo` as the kernel writes it: btrfs, ZFS and bcachefs under an
    /// anonymous device number, their source naming the device (or, for ZFS, the pool).
    var mountInfo: String {
        // The kernel always lists a root; where no disk is mounted on `/`, a tmpfs is.
        let root = visibleDisks.contains { $0.mounted == "/" } ? "" : "21 1 0:20 / / rw,relatime - tmpfs tmpfs rw\n"
        return root
            + visibleDisks.enumerated().compactMap { index, disk in
                disk.mounted.map { point in
                    let number = disk.hasAnonymousNumber ? "0:\(40 + index)" : disk.dev
                    return
                        "\(30 + index) 1 \(number) / \(point) rw,relatime - \(disk.fstype ?? "ext4") "
                        + "\(disk.source ?? "/dev/\(disk.name)") rw\n"
                }
            }.joined()
    }
}
