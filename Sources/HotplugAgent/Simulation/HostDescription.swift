/// A machine for the simulated host: its PCI devices, the drivers its kernel has, and the
/// accounts policies may name. Stored as JSON (`hosts/*.json`); `simulate --host` reads it.
struct HostDescription: Codable, Sendable {
    var name: String
    var users: [String: UInt32]?
    var groups: [String: UInt32]?
    var drivers: [Driver]
    var devices: [Device]
    /// The kernel has VFIO device nodes and iommufd (`/dev/vfio/devices/vfioN`, `/dev/iommu`).
    var vfioDeviceNodes: Bool?
    /// `uname -r`, and the `vfio_pci:` lines of its `modules.alias` (the VFIO drivers made
    /// for particular devices: `alias vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i* mlx5_vfio_pci`).
    var kernelRelease: String?
    var vfioAliases: [String]?
    /// The CPU family (`intel`, `amd`, `power`, `arm64`), for boot-config's IOMMU arguments.
    var cpu: CPUPlatform?

    enum CodingKeys: String, CodingKey {
        case name, users, groups, drivers, devices
        case vfioDeviceNodes = "vfio_device_nodes"
        case kernelRelease = "kernel_release"
        case vfioAliases = "vfio_aliases"
        case cpu
    }

    struct Driver: Codable, Sendable {
        var name: String
        /// The module that registers it; defaults to the name with `-` as `_`.
        var module: String?
        /// Registered at boot (module loaded or built in).
        var loaded: Bool
        /// `modprobe` can load it (false: not installed or blacklisted).
        var loadable: Bool?
        /// Static ID table: `vvvv:dddd` patterns.
        var ids: [String]?
        /// Class-code prefixes it binds (`0604` for pcieport, `0c0330` for xhci).
        var classes: [String]?
        /// It can enable SR-IOV on the PFs it drives (`sriov_numvfs` works).
        var sriov: Bool?
        /// Its module is built on vfio-pci-core (a VFIO variant driver whatever its name).
        var vfio: Bool?
    }

    struct Interface: Codable, Sendable, Equatable {
        var name: String
        var up: Bool
    }

    struct Disk: Codable, Sendable, Equatable {
        var name: String
        /// major:minor
        var dev: String
        var mounted: String?
        var swap: Bool?
        var holders: [String]?
        /// Open `O_EXCL` by someone (the kernel answers EBUSY): what a mounted filesystem,
        /// swap, md, dm and a ZFS pool's vdevs do.
        var exclusive: Bool?
        /// The errno an `O_EXCL` open gets when it may not open the node at all (a device
        /// cgroup without `block-*`, EPERM): the agent cannot tell whether it is free.
        var probeDenied: String?
        /// The file system type when mounted; btrfs, zfs and bcachefs mount under an
        /// anonymous device number.
        var fstype: String?
        /// The mount's source when not `/dev/<name>` (a ZFS pool's name).
        var source: String?
        /// NVMe native multipath: the subsystem (`nvme-subsys0`) whose directory holds this
        /// namespace, and the controller (`nvme0`) of this function that reaches it.
        var multipath: String?
        var controller: String?

        init(name: String, dev: String, mounted: String? = nil, swap: Bool? = nil, holders: [String]? = nil,
             exclusive: Bool? = nil, probeDenied: String? = nil, fstype: String? = nil, source: String? = nil,
             multipath: String? = nil, controller: String? = nil) {
            self.name = name
            self.dev = dev
            self.mounted = mounted
            self.swap = swap
            self.holders = holders
            self.exclusive = exclusive
            self.probeDenied = probeDenied
            self.fstype = fstype
            self.source = source
            self.multipath = multipath
            self.controller = controller
        }

        /// Anonymous device numbers: the mount's field 3 does not name the disk.
        var hasAnonymousNumber: Bool { ["btrfs", "zfs", "bcachefs"].contains(fstype ?? "") }
        /// Whether the kernel would refuse an `O_EXCL` open of it.
        var isBusy: Bool { mounted != nil || swap == true || !(holders ?? []).isEmpty || exclusive == true }
    }

    /// A PF's SR-IOV capability.
    struct SRIOV: Codable, Sendable {
        var totalVFs: Int
        var offset: Int
        var stride: Int
        /// The VFs' device ID (hex).
        var vfDevice: String
        var autoprobe: Bool?
        /// Attributes each VF has, `%d` standing for its number from 1 (vendor knobs).
        var pfAttributes: [String: String]?

        enum CodingKeys: String, CodingKey {
            case offset, stride, autoprobe
            case totalVFs = "total_vfs"
            case vfDevice = "vf_device"
            case pfAttributes = "pf_attributes_per_vf"
        }
    }

    struct Device: Codable, Sendable {
        var address: String
        var id: String
        var subsystem: String?
        var `class`: String
        /// The upstream bridge; nil for devices on a root bus.
        var parent: String?
        var iommuGroup: Int?
        var driver: String?
        var bootVGA: Bool?
        /// Further attribute files and their contents (`reset_method`, `d3cold_allowed`,
        /// `drm/card1/prelim_iov/pf/gt/exec_quantum_ms`).
        var attributes: [String: String]?
        /// Config space as hex bytes; the rest up to `config_size` reads zero. Without it,
        /// a plain header is made from the IDs and class.
        var config: String?
        var configSize: Int?
        var sriov: SRIOV?
        /// Network interfaces and disks the host driver makes of it.
        var net: [Interface]?
        var block: [Disk]?
        /// Attributes that can be written but not read back (`remove`, `rescan` and `reset`
        /// are always so).
        var writeOnly: [String]?

        enum CodingKeys: String, CodingKey {
            case address, id, subsystem, `class`, parent, driver, attributes, config, sriov, net, block
            case writeOnly = "write_only"
            case configSize = "config_size"
            case iommuGroup = "iommu_group"
            case bootVGA = "boot_vga"
        }
    }
}
