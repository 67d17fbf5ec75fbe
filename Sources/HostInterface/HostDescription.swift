/// A machine for the simulated host: its PCI devices, the drivers its kernel has, and the
/// accounts policies may name. Stored as JSON (`hosts/*.json`); `simulate --host` reads it.
package struct HostDescription: Codable, Sendable {
    package var name: String
    package var users: [String: UInt32]?
    package var groups: [String: UInt32]?
    package var drivers: [Driver]
    package var devices: [Device]
    /// The kernel has VFIO device nodes and iommufd (`/dev/vfio/devices/vfioN`, `/dev/iommu`).
    package var vfioDeviceNodes: Bool?
    /// `uname -r`, and the `vfio_pci:` lines of its `modules.alias` (the VFIO drivers made
    /// for particular devices: `alias vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i* mlx5_vfio_pci`).
    package var kernelRelease: String?
    package var vfioAliases: [String]?
    /// The CPU family (`intel`, `amd`, `power`, `arm64`), for boot-config's IOMMU arguments.
    package var cpu: CPUPlatform?

    package init(
        name: String, users: [String: UInt32]? = nil, groups: [String: UInt32]? = nil, drivers: [Driver],
        devices: [Device], vfioDeviceNodes: Bool? = nil, kernelRelease: String? = nil,
        vfioAliases: [String]? = nil, cpu: CPUPlatform? = nil
    ) {
        self.name = name
        self.users = users
        self.groups = groups
        self.drivers = drivers
        self.devices = devices
        self.vfioDeviceNodes = vfioDeviceNodes
        self.kernelRelease = kernelRelease
        self.vfioAliases = vfioAliases
        self.cpu = cpu
    }

    enum CodingKeys: String, CodingKey {
        case name, users, groups, drivers, devices
        case vfioDeviceNodes = "vfio_device_nodes"
        case kernelRelease = "kernel_release"
        case vfioAliases = "vfio_aliases"
        case cpu
    }

    package struct Driver: Codable, Sendable {
        package var name: String
        /// The module that registers it; defaults to the name with `-` as `_`.
        package var module: String?
        /// Registered at boot (module loaded or built in).
        package var loaded: Bool
        /// `modprobe` can load it (false: not installed or blacklisted).
        package var loadable: Bool?
        /// Static ID table: `vvvv:dddd` patterns.
        package var ids: [String]?
        /// Class-code prefixes it binds (`0604` for pcieport, `0c0330` for xhci).
        package var classes: [String]?
        /// It can enable SR-IOV on the PFs it drives (`sriov_numvfs` works).
        package var sriov: Bool?
        /// Its module is built on vfio-pci-core (a VFIO variant driver whatever its name).
        package var vfio: Bool?

        package init(
            name: String, module: String? = nil, loaded: Bool, loadable: Bool? = nil, ids: [String]? = nil,
            classes: [String]? = nil, sriov: Bool? = nil, vfio: Bool? = nil
        ) {
            self.name = name
            self.module = module
            self.loaded = loaded
            self.loadable = loadable
            self.ids = ids
            self.classes = classes
            self.sriov = sriov
            self.vfio = vfio
        }
    }

    package struct Interface: Codable, Sendable, Equatable {
        package var name: String
        package var up: Bool

        package init(name: String, up: Bool) {
            self.name = name
            self.up = up
        }
    }

    package struct Disk: Codable, Sendable, Equatable {
        package var name: String
        /// major:minor
        package var dev: String
        package var mounted: String?
        package var swap: Bool?
        package var holders: [String]?
        /// Open `O_EXCL` by someone (the kernel answers EBUSY): what a mounted filesystem,
        /// swap, md, dm and a ZFS pool's vdevs do.
        package var exclusive: Bool?
        /// The errno an `O_EXCL` open gets when it may not open the node at all (a device
        /// cgroup without `block-*`, EPERM): the agent cannot tell whether it is free.
        package var probeDenied: String?
        /// The file system type when mounted; btrfs, zfs and bcachefs mount under an
        /// anonymous device number.
        package var fstype: String?
        /// The mount's source when not `/dev/<name>` (a ZFS pool's name).
        package var source: String?
        /// NVMe native multipath: the subsystem (`nvme-subsys0`) whose directory holds this
        /// namespace, and the controller (`nvme0`) of this function that reaches it.
        package var multipath: String?
        package var controller: String?

        package init(
            name: String, dev: String, mounted: String? = nil, swap: Bool? = nil, holders: [String]? = nil,
            exclusive: Bool? = nil, probeDenied: String? = nil, fstype: String? = nil, source: String? = nil,
            multipath: String? = nil, controller: String? = nil
        ) {
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
        package var hasAnonymousNumber: Bool { ["btrfs", "zfs", "bcachefs"].contains(fstype ?? "") }
        /// Whether the kernel would refuse an `O_EXCL` open of it.
        package var isBusy: Bool { mounted != nil || swap == true || !(holders ?? []).isEmpty || exclusive == true }
    }

    /// A PF's SR-IOV capability.
    package struct SRIOV: Codable, Sendable {
        package var totalVFs: Int
        package var offset: Int
        package var stride: Int
        /// The VFs' device ID (hex).
        package var vfDevice: String
        package var autoprobe: Bool?
        /// Attributes each VF has, `%d` standing for its number from 1 (vendor knobs).
        package var pfAttributes: [String: String]?

        package init(
            totalVFs: Int, offset: Int, stride: Int, vfDevice: String, autoprobe: Bool? = nil,
            pfAttributes: [String: String]? = nil
        ) {
            self.totalVFs = totalVFs
            self.offset = offset
            self.stride = stride
            self.vfDevice = vfDevice
            self.autoprobe = autoprobe
            self.pfAttributes = pfAttributes
        }

        enum CodingKeys: String, CodingKey {
            case offset, stride, autoprobe
            case totalVFs = "total_vfs"
            case vfDevice = "vf_device"
            case pfAttributes = "pf_attributes_per_vf"
        }
    }

    package struct Device: Codable, Sendable {
        package var address: String
        package var id: String
        package var subsystem: String?
        package var `class`: String
        /// The upstream bridge; nil for devices on a root bus.
        package var parent: String?
        package var iommuGroup: Int?
        package var driver: String?
        package var bootVGA: Bool?
        /// Further attribute files and their contents (`reset_method`, `d3cold_allowed`,
        /// `drm/card1/prelim_iov/pf/gt/exec_quantum_ms`).
        package var attributes: [String: String]?
        /// Config space as hex bytes; the rest up to `config_size` reads zero. Without it,
        /// a plain header is made from the IDs and class.
        package var config: String?
        package var configSize: Int?
        package var sriov: SRIOV?
        /// Network interfaces and disks the host driver makes of it.
        package var net: [Interface]?
        package var block: [Disk]?
        /// Attributes that can be written but not read back (`remove`, `rescan` and `reset`
        /// are always so).
        package var writeOnly: [String]?

        package init(
            address: String, id: String, subsystem: String? = nil, class: String, parent: String? = nil,
            iommuGroup: Int? = nil, driver: String? = nil, bootVGA: Bool? = nil, attributes: [String: String]? = nil
        ) {
            self.address = address
            self.id = id
            self.subsystem = subsystem
            self.class = `class`
            self.parent = parent
            self.iommuGroup = iommuGroup
            self.driver = driver
            self.bootVGA = bootVGA
            self.attributes = attributes
        }

        enum CodingKeys: String, CodingKey {
            case address, id, subsystem, `class`, parent, driver, attributes, config, sriov, net, block
            case writeOnly = "write_only"
            case configSize = "config_size"
            case iommuGroup = "iommu_group"
            case bootVGA = "boot_vga"
        }
    }
}
