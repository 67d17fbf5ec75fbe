import HostInterface
import Policy

/// The simulated kernel's state and its rules, as `../kernel facts` in the README list them:
/// overrides, matching, probe, bind and unbind, IOMMU groups, `/dev/vfio` nodes, uevents.
package struct SimulatedState {
    package struct Device {
        var address: PCIAddress
        var id: PCIID
        var subsystemID: PCIID?
        var classCode: UInt32
        var parent: PCIAddress?
        var group: Int?
        package var driver: String?
        var override: String?
        var bootVGA: Bool
        /// Attribute files by path below the device directory (`drm/card1/…` nests).
        var attributes: [String: String]
        var config: [UInt8]
        var sriov: SRIOV?
        /// For a VF: its PF; `linked` once the kernel has made the physfn/virtfn links.
        var physfn: PCIAddress?
        var linked = false
        /// `reset_method` as it reads before anyone writes it: what `default` restores.
        var defaultResetMethod: String?
        /// What its host driver makes of it; there only while a host driver has it.
        var interfaces: [HostDescription.Interface] = []
        var disks: [HostDescription.Disk] = []
        /// The inode of its sysfs directory: new for each device the kernel adds.
        var inode = 0
        /// Attributes that can be written but not read back, besides `remove`, `rescan`, `reset`.
        var writeOnly: Set<String> = []
        /// N of its iommufd node `/dev/vfio/devices/vfioN` while on a VFIO driver.
        var deviceNode: Int?
        /// Its path below `/sys` and its uevents' variables but `DRIVER`, which do not change
        /// while it is there: made once by `insert` rather than for every event and read.
        var devpath = ""
        var eventVariables: [String: String] = [:]
        /// The `uevent` file's lines after `DRIVER`, made with `eventVariables`.
        var ueventBusLines = ""

        var hostDriverHasIt: Bool { driver != nil && !VFIODrivers().keepGroupViable(driver) }

        /// `pci:v000015B3d0000101Esv000015B3sd00000001bc02sc00i00`, as the kernel writes it.
        var modalias: String {
            PCIDevice.modalias(id: id, subsystemID: subsystemID ?? PCIID(vendor: 0, device: 0), classCode: classCode)
        }

        var isBridge: Bool { classCode >> 8 == 0x0604 || classCode >> 8 == 0x0609 }
    }

    struct SRIOV {
        var total: Int
        var count = 0
        var autoprobe = true
        var offset: Int
        var stride: Int
        var vfDevice: UInt16
        /// Attributes the PF grows per VF (`drm/card1/prelim_iov/vf%d/gt/exec_quantum_ms`).
        var perVFAttributes: [String: String] = [:]
    }

    struct Driver {
        var name: String
        var module: String
        var registered: Bool
        var loadable: Bool
        var ids: [PCIIDPattern]
        var dynamicIDs: [PCIIDPattern] = []
        var classes: [String]
        var sriov = false
        /// Built on vfio-pci-core: listed in `/sys/module/vfio_pci_core/holders/`.
        var vfio = false
    }

    struct Node {
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        var mode: UInt16 = 0o600
        var inode: Int
        /// For a device node: the device it belongs to.
        var device: PCIAddress?
    }

    package var devices: [PCIAddress: Device] = [:]
    /// IOMMU group → its devices; kept by `insert` and `remove`, the only ways devices
    /// come and go.
    private(set) var groupMembers: [Int: Set<PCIAddress>] = [:]
    /// Devices with network interfaces or disks (few), so /sys/class need not scan all.
    private(set) var hostUsers = Set<PCIAddress>()
    var drivers: [String: Driver] = [:]
    /// Registration order: the order drivers are tried in.
    var driverOrder: [String] = []
    var nodes: [Int: Node] = [:]
    /// The kernel has VFIO device nodes (`CONFIG_VFIO_DEVICE_CDEV`) and `/dev/iommu`.
    var deviceNodesEnabled = false
    /// `/dev/vfio/devices/vfioN` by N.
    var deviceNodes: [Int: Node] = [:]
    /// `uname -r` and the `vfio_pci:` alias lines of its `modules.alias`.
    var kernelRelease = "simulated"
    var vfioAliases: [String] = []
    /// `/dev/iommu`'s owner, group, mode and ACL, when the kernel has iommufd.
    var iommu: (node: Node, acl: POSIXACL?)?
    var nextInode = 1000
    var events: [UEvent] = []
    /// Every bind and unbind the kernel did, in order: `bind 0000:10:00.0 vfio-pci`.
    var history: [String] = []
    /// Every write to an attribute through a path beneath a device (`sysfs` entries), in
    /// order: `0000:0b:00.0 reset_method=`.
    var attributeWrites: [String] = []
    /// Processes holding a group's `/dev/vfio` node open.
    var nodeOpeners: [Int: [NodeOpener]] = [:]
    /// Holds of VFIO devices other than open nodes: descriptors and mappings, with the
    /// device each really holds (which `/proc` may not show).
    var otherHolds: [(device: PCIAddress, opener: NodeOpener)] = []
    /// What `/proc/self/ns/pid` reads: the host's initial PID namespace, unless a test puts
    /// the agent in a container's.
    var pidNamespace = hostPIDNamespace
    /// Kernel lockdown: config space writes fail with EPERM.
    var lockdown = false
    /// How many uevents fit the listener's socket before the rest are lost (nil: no limit).
    var eventCapacity: Int?
    /// Writes left before the agent "dies" (see `SimulatedKernel.freeze`).
    var writesBeforeFreeze: Int?
    /// Injected faults: the probe of a driver on a device fails with this errno.
    var probeFaults: [String: Errno] = [:]
    /// Paths whose resolution fails with EIO (a sysfs the agent cannot follow).
    var resolveFaults = Set<String>()
    /// Links whose reading fails with EIO.
    var linkFaults = Set<String>()
    /// Paths whose reading (or listing) fails with EIO, until taken out again.
    var readFaults = Set<String>()
    /// Injected faults: writes to paths ending so fail with this errno, this many times.
    var writeFaults: [String: (errno: Errno, times: Int)] = [:]
    /// Holds new VFs between their `add` and their links (a window the kernel has too),
    /// until `releaseVFLinks()`: for testing decisions made in that window.
    var holdVFLinks = false

    /// The failure a test arranged for this write, if any: every write once the agent is
    /// "dead" (`writesBeforeFreeze` used up), or one of the faults injected for the path.
    mutating func takeInjectedFault(_ path: String) -> Errno? {
        if let remaining = writesBeforeFreeze {
            guard remaining > 0 else { return .EIO }
            writesBeforeFreeze = remaining - 1
        }
        if let (suffix, fault) = writeFaults.first(where: { path.hasSuffix($0.key) }), fault.times > 0 {
            writeFaults[suffix] = fault.times > 1 ? (fault.errno, fault.times - 1) : nil
            return fault.errno
        }
        return nil
    }

    mutating func insert(_ device: Device) {
        devices[device.address] = device
        devices[device.address]!.inode = nextInode
        devices[device.address]!.devpath = walkDevpath(device.address)
        let variables = Self.eventVariables(of: device)
        devices[device.address]!.eventVariables = variables
        devices[device.address]!.ueventBusLines = Self.ueventBusLines(variables)
        nextInode += 1
        if let group = device.group { groupMembers[group, default: []].insert(device.address) }
        if !device.interfaces.isEmpty || !device.disks.isEmpty { hostUsers.insert(device.address) }
    }

    mutating func remove(_ address: PCIAddress) {
        // The kernel releases a group with its last device (its number free again: `ida_free`).
        if let group = devices.removeValue(forKey: address)?.group, groupMembers[group]?.remove(address) != nil,
            groupMembers[group]?.isEmpty == true
        {
            groupMembers[group] = nil
        }
        hostUsers.remove(address)
    }

    /// The devices of an IOMMU group, in address order.
    func members(of group: Int) -> [PCIAddress] { (groupMembers[group] ?? []).sorted() }

    // MARK: Matching and probing

    func matches(_ driver: Driver, _ device: Device) -> Bool {
        if let override = device.override { return override == driver.name }
        return (driver.ids + driver.dynamicIDs).contains { $0.matches(device.id) }
            || driver.classes.contains { hex(device.classCode, width: 6).hasPrefix($0) }
    }

    /// The probe's own verdict: vfio-pci takes only normal-header functions with a group,
    /// and no PF with VFs enabled; a VF of a PF with autoprobe off probes only when its
    /// driver_override is set.
    func probeError(_ driver: Driver, _ device: Device) -> Errno? {
        if let fault = probeFaults["\(device.address) \(driver.name)"] { return fault }
        if let pf = device.physfn, devices[pf]?.sriov?.autoprobe == false, device.override == nil { return .ENODEV }
        if driver.vfio && (device.isBridge || device.group == nil) { return .EINVAL }
        if driver.vfio && (device.sriov?.count ?? 0) > 0 { return .EBUSY }
        if driver.name == "pcieport" && !device.isBridge { return .ENODEV }
        return nil
    }

    /// device_attach: the first registered driver that matches and probes takes the device.
    mutating func attach(_ address: PCIAddress) {
        guard let device = devices[address], device.driver == nil else { return }
        for name in driverOrder {
            guard let driver = drivers[name], driver.registered, matches(driver, device) else { continue }
            if probeError(driver, device) == nil {
                bind(address, to: name)
                return
            }
        }
    }

    /// Binds; the first VFIO device of a group creates `/dev/vfio/<group>` (a new inode,
    /// root 0600) and its `add` comes before the device's `bind`.
    mutating func bind(_ address: PCIAddress, to driver: String) {
        if isVFIO(driver), let group = devices[address]!.group, nodes[group] == nil {
            nodes[group] = Node(inode: nextInode)
            nextInode += 1
            events.append(vfioEvent("add", group))
        }
        // The device's own node (iommufd): the lowest free N, after the group's node and
        // before the device's `bind`.
        if isVFIO(driver), deviceNodesEnabled {
            let number = (0...).first { deviceNodes[$0] == nil }!
            deviceNodes[number] = Node(inode: nextInode, device: address)
            nextInode += 1
            devices[address]!.deviceNode = number
            events.append(vfioDeviceEvent("add", address, number))
        }
        devices[address]!.driver = driver
        history.append("bind \(address) \(driver)")
        events.append(pciEvent("bind", address))
    }

    /// Unbinds; the last VFIO device of a group takes its node away before its `unbind`.
    mutating func unbind(_ address: PCIAddress) {
        guard let device = devices[address], let driver = device.driver else { return }
        if let number = device.deviceNode {
            events.append(vfioDeviceEvent("remove", address, number))
            deviceNodes[number] = nil
            devices[address]!.deviceNode = nil
        }
        if isVFIO(driver), let group = device.group,
            !(groupMembers[group] ?? []).contains(where: { $0 != address && isVFIO(devices[$0]?.driver) })
        {
            nodes[group] = nil
            events.append(vfioEvent("remove", group))
        }
        devices[address]!.driver = nil
        history.append("unbind \(address) \(driver)")
        events.append(pciEvent("unbind", address))
    }

    /// Registers a driver (module load) and lets it take every unbound device it matches.
    mutating func register(_ name: String) {
        guard drivers[name]?.registered == false else { return }
        drivers[name]!.registered = true
        driverOrder.removeAll { $0 == name }
        driverOrder.append(name)
        for address in devices.keys.sorted() where devices[address]!.driver == nil {
            let device = devices[address]!
            if matches(drivers[name]!, device) && probeError(drivers[name]!, device) == nil { bind(address, to: name) }
        }
        // bus_add_driver() announces the driver once it has taken its devices.
        events.append(UEvent(action: "add", subsystem: "drivers", devpath: "/bus/pci/drivers/\(name)"))
    }

    // MARK: Hotplug

    /// A device arrives: `add`, then the kernel probes it at once and sends `bind`.
    mutating func plug(_ device: Device) {
        var device = device
        device.driver = nil  // a new device arrives unbound; the probe below binds it
        insert(device)
        events.append(pciEvent("add", device.address))
        attach(device.address)
    }

    /// A device and everything below it leave: unbind depth-first, then `remove`, children first.
    mutating func unplug(_ address: PCIAddress) {
        let doomed = subtree(address).sorted { depth($0) > depth($1) || (depth($0) == depth($1) && $0 > $1) }
        for member in doomed where devices[member]?.driver != nil { unbind(member) }
        for member in doomed {
            events.append(pciEvent("remove", member))
            remove(member)
        }
    }

    func subtree(_ address: PCIAddress) -> [PCIAddress] {
        var result = [address]
        for (child, device) in devices where device.parent == address { result += subtree(child) }
        return result
    }

    func depth(_ address: PCIAddress) -> Int {
        var depth = 0, current = devices[address]?.parent
        while let parent = current { depth += 1; current = devices[parent]?.parent }
        return depth
    }
}

extension SimulatedState {
    /// Whether the kernel counts this driver as built on vfio-pci-core.
    func isVFIO(_ driver: String?) -> Bool { driver.flatMap { drivers[$0]?.vfio } ?? false }
}
