import Glibc
import HotplugAgent
import Policy
import Synchronization

/// The simulated host's kernel: answers the agent's file operations on `/sys` and `/dev`
/// under its root the way Linux does, and queues the uevents Linux would send. The agent
/// runs the same code on it as on a real host; only this lowest layer differs.
package final class SimulatedKernel: KernelIO, PollableEventSource, Sendable {
    package let paths: HostPaths
    private let state: ReadWriteLocked<SimulatedState>
    /// `/sys/bus/pci/devices/` under the root and the other prefixes the agent reads
    /// under all the time: paths that start so parse fast.
    private let devicePrefix: String, groupPrefix: String, driverPrefix: String, vfioPrefix: String
    private let fixedPaths: [String: SimulatedPath]
    /// Called after each write the agent makes, outside the model's lock: tests use it to
    /// make the world change between two of the agent's writes.
    let afterWrite = Mutex<(@Sendable (String) -> Void)?>(nil)
    /// Readable while uevents wait, like a netlink socket; see `drain()`.
    package let fileDescriptor: Int32
    private let notifyFD: Int32
    /// Writes of `drivers_probe` that never return (a probe that hangs) until released.
    private let hungProbes = Mutex<Set<PCIAddress>>([])
    /// How long a probe through drivers_probe takes (vfio-pci's function reset: 100 ms or
    /// more), spent outside the model's lock so probes of different devices overlap.
    package let probeTime = Mutex<Duration>(.zero)

    package init(_ description: HostDescription, paths: HostPaths = HostPaths(root: "/")) throws(SimulationError) {
        self.paths = paths
        devicePrefix = paths.pciDevices + "/"
        groupPrefix = paths.iommuGroups + "/"
        driverPrefix = paths.pciDrivers + "/"
        vfioPrefix = paths.under("/dev/vfio/")
        fixedPaths = [paths.pciDevices: .devicesDir, paths.pciDrivers: .driversDir, paths.driversProbe: .driversProbe,
                      paths.iommuGroups: .groupsDir, paths.under("/dev/vfio"): .vfioDir]
        var state = SimulatedState()
        for driver in description.drivers {
            let ids = try (driver.ids ?? []).map { text throws(SimulationError) in
                guard let pattern = PCIIDPattern(text) else { throw .invalid("driver \(driver.name): id \(text)") }
                return pattern
            }
            state.drivers[driver.name] = SimulatedState.Driver(
                name: driver.name, module: driver.module ?? driver.name.replacing("-", with: "_"),
                registered: driver.loaded, loadable: driver.loadable ?? true, ids: ids,
                classes: (driver.classes ?? []).map { $0.lowercased() }, sriov: driver.sriov ?? false,
                vfio: driver.vfio ?? DriverKind.isVFIO(driver.name))
            if driver.loaded { state.driverOrder.append(driver.name) }
        }
        for device in description.devices {
            let parsed = try Self.device(device)
            state.insert(parsed)
        }
        state.deviceNodesEnabled = description.vfioDeviceNodes ?? false
        state.kernelRelease = description.kernelRelease ?? state.kernelRelease
        state.vfioAliases = description.vfioAliases ?? []
        if state.deviceNodesEnabled { state.iommu = (SimulatedState.Node(mode: 0o660, inode: 1), nil) }
        // Devices that start on a VFIO driver have their group's node already.
        for device in state.devices.values.sorted(by: { $0.address < $1.address }) {
            if DriverKind.isVFIO(device.driver), let group = device.group, state.nodes[group] == nil {
                state.nodes[group] = SimulatedState.Node(inode: state.nextInode)
                state.nextInode += 1
            }
            if DriverKind.isVFIO(device.driver), state.deviceNodesEnabled {
                let number = state.deviceNodes.count
                state.deviceNodes[number] = SimulatedState.Node(inode: state.nextInode, device: device.address)
                state.nextInode += 1
                state.devices[device.address]!.deviceNode = number
            }
        }
        self.state = ReadWriteLocked(state)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw .invalid("pipe: \(Errno.current)") }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        (fileDescriptor, notifyFD) = (fds[0], fds[1])
    }

    deinit {
        close(fileDescriptor)
        close(notifyFD)
    }

    /// Wakes a daemon sleeping on `fileDescriptor` when events wait.
    private func notifyIfEvents() {
        if state.read({ !$0.events.isEmpty }) {
            var byte: UInt8 = 1
            _ = Glibc.write(notifyFD, &byte, 1)
        }
    }

    /// Makes the write of `address` to drivers_probe hang until `releaseHungProbes()`.
    func hangProbe(_ address: PCIAddress) { hungProbes.withLock { _ = $0.insert(address) } }
    func releaseHungProbes() { hungProbes.withLock { $0.removeAll() } }

    static func device(_ description: HostDescription.Device) throws(SimulationError) -> SimulatedState.Device {
        guard let address = PCIAddress(description.address) else { throw .invalid("address \(description.address)") }
        guard let id = PCIID(description.id) else { throw .invalid("\(address): id \(description.id)") }
        guard let classCode = UInt32(description.class, radix: 16), description.class.count == 6 else {
            throw .invalid("\(address): class \(description.class)")
        }
        var parent: PCIAddress?
        if let text = description.parent {
            guard let parsed = PCIAddress(text) else { throw .invalid("\(address): parent \(text)") }
            parent = parsed
        }
        var config = try configBytes(description.config, address)
        if description.config == nil {
            // A plain header: IDs, class, header type.
            config = [UInt8](repeating: 0, count: 64)
            for (offset, value, width) in [(0, UInt32(id.vendor), 2), (2, UInt32(id.device), 2), (9, classCode, 3)] {
                for i in 0..<width { config[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
            }
            config[0x0e] = classCode >> 8 == 0x0604 ? 1 : 0
        }
        config += [UInt8](repeating: 0, count: max(0, (description.configSize ?? 256) - config.count))
        var sriov: SimulatedState.SRIOV?
        if let capability = description.sriov {
            guard let vfDevice = UInt16(capability.vfDevice, radix: 16) else { throw .invalid("\(address): vf_device") }
            sriov = SimulatedState.SRIOV(total: capability.totalVFs, autoprobe: capability.autoprobe ?? true,
                                         offset: capability.offset, stride: capability.stride, vfDevice: vfDevice,
                                         perVFAttributes: capability.pfAttributes ?? [:])
        }
        let attributes = description.attributes ?? [:]
        return SimulatedState.Device(
            address: address, id: id, subsystemID: description.subsystem.flatMap { PCIID($0) },
            classCode: classCode, parent: parent, group: description.iommuGroup, driver: description.driver,
            override: nil, bootVGA: description.bootVGA ?? false, attributes: attributes, config: config,
            sriov: sriov, defaultResetMethod: attributes["reset_method"],
            interfaces: description.net ?? [], disks: description.block ?? [],
            writeOnly: Set(description.writeOnly ?? []))
    }

    /// `"10 02 00 73 …"`: hex bytes, white space ignored.
    static func configBytes(_ text: String?, _ address: PCIAddress) throws(SimulationError) -> [UInt8] {
        guard let text else { return [] }
        let digits = text.filter { !$0.isWhitespace }
        guard digits.count % 2 == 0 else { throw .invalid("\(address): config has an odd number of hex digits") }
        var bytes: [UInt8] = []
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            guard let byte = UInt8(digits[index..<next], radix: 16) else { throw .invalid("\(address): config \(digits[index..<next])") }
            bytes.append(byte)
            index = next
        }
        return bytes
    }

    // MARK: The simulation's own controls (tests, `simulate`)

    /// Like a netlink socket with a full receive buffer: past `capacity` queued events the
    /// rest are lost, and the next drain says so (ENOBUFS).
    func limitEventQueue(to capacity: Int) { state.write { $0.eventCapacity = capacity } }

    package func drain() -> (events: [UEvent], overflowed: Bool) {
        var bytes = [UInt8](repeating: 0, count: 256)
        while bytes.withUnsafeMutableBytes({ Glibc.read(fileDescriptor, $0.baseAddress, $0.count) }) > 0 {}
        return state.write { state in
            defer { state.events.removeAll() }
            if let capacity = state.eventCapacity, state.events.count > capacity {
                return (Array(state.events.prefix(capacity)), true)
            }
            return (state.events, false)
        }
    }

    package func plug(_ description: HostDescription.Device) throws(SimulationError) {
        let device = try Self.device(description)
        state.write { $0.plug(device) }
        notifyIfEvents()
    }

    package func unplug(_ address: PCIAddress) {
        state.write { $0.unplug(address) }
        notifyIfEvents()
    }

    /// Kernel lockdown on or off: config space writes fail with EPERM while it is on.
    func setLockdown(_ on: Bool) { state.write { $0.lockdown = on } }

    /// Makes `driver`'s probe of `address` fail with `errno` (nil: succeed again).
    func injectProbeFailure(_ address: PCIAddress, _ driver: String, _ errno: Errno?) {
        state.write { $0.probeFaults["\(address) \(driver)"] = errno }
    }

    /// After `count` more writes, every write fails with EIO until `thaw()`: an agent killed
    /// between two writes, leaving sysfs exactly as that moment left it.
    func freeze(afterWrites count: Int) { state.write { $0.writesBeforeFreeze = count } }
    func thaw() { state.write { $0.writesBeforeFreeze = nil } }

    /// Makes the next `times` writes to a path ending in `suffix` fail with `errno`.
    func injectWriteFailure(endingIn suffix: String, _ errno: Errno, times: Int = 1) {
        state.write { $0.writeFaults[suffix] = (errno, times) }
    }

    /// While held, new VFs stay between their `add` and their links.
    func holdVFLinks() { state.write { $0.holdVFLinks = true } }
    func releaseVFLinks() { state.write { $0.releaseVFLinks() } }

    /// Reads the model directly, for assertions and the end-state report.
    package func inspect<T>(_ body: (SimulatedState) -> T) -> T { state.read { body($0) } }

    // MARK: KernelIO

    /// A device, group, driver or vfio path by the fast path, anything else the long way.
    private func parse(_ path: String) -> SimulatedPath {
        var path = path
        func hasPrefix(_ prefix: String) -> Bool {
            var prefix = prefix
            return path.withUTF8 { whole in
                prefix.withUTF8 { start in whole.count >= start.count && memcmp(whole.baseAddress!, start.baseAddress!, start.count) == 0 }
            }
        }
        if hasPrefix(devicePrefix) {
            let rest = path.utf8.dropFirst(devicePrefix.utf8.count)
            guard let address = PCIAddress(Substring(rest.prefix(12))) else { return .other }
            if rest.count == 12 { return .deviceDir(address) }
            let below = rest.dropFirst(12)
            guard below.first == UInt8(ascii: "/"), below.count > 1, below.last != UInt8(ascii: "/") else { return .other }
            return .deviceFile(address, String(Substring(below.dropFirst())))
        }
        if hasPrefix(groupPrefix) {
            // `<group>/devices`
            let rest = Substring(path.utf8.dropFirst(groupPrefix.utf8.count))
            guard rest.hasSuffix("/devices"), let group = Int(rest.dropLast(8)) else { return .other }
            return .groupDevices(group)
        }
        if hasPrefix(driverPrefix) {
            // `<driver>` or `<driver>/<file>`
            let parts = path.utf8.dropFirst(driverPrefix.utf8.count).split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
            switch parts.count {
            case 1 where !parts[0].isEmpty: return .driverDir(String(Substring(parts[0])))
            case 2 where !parts[0].isEmpty && !parts[1].isEmpty: return .driverFile(String(Substring(parts[0])), String(Substring(parts[1])))
            default: return .other
            }
        }
        if hasPrefix(vfioPrefix) {
            let rest = Substring(path.utf8.dropFirst(vfioPrefix.utf8.count))
            if rest.hasPrefix("devices/vfio") { return Int(rest.dropFirst(12)).map { .vfioDeviceNode($0) } ?? .other }
            return Int(rest).map { .vfioNode($0) } ?? .other
        }
        return fixedPaths[path] ?? SimulatedPath(path, root: paths)
    }

    package func read(_ path: String) throws(IOFailure) -> String {
        try state.read { state throws(IOFailure) in
            switch parse(path) {
            case .deviceFile(let address, let name) where name.hasPrefix("vfio-dev/"):
                guard let number = state.devices[address]?.deviceNode, name == "vfio-dev/vfio\(number)/dev" else {
                    throw IOFailure(.read, path, errno: .ENOENT)
                }
                return "\(SimulatedState.vfioDeviceMajor):\(number)\n"
            case .deviceFile(let address, let name):
                do throws(Errno) { return try state.readAttribute(address, name) } catch { throw IOFailure(.read, path, errno: error) }
            case .classEntry("net", let name, "flags"):
                guard let (_, interface) = state.interface(name) else { throw IOFailure(.read, path, errno: .ENOENT) }
                return interface.up ? "0x1003\n" : "0x1002\n"
            case .classEntry("block", let name, "dev"):
                guard let (_, disk) = state.disk(name) else { throw IOFailure(.read, path, errno: .ENOENT) }
                return disk.dev + "\n"
            case .proc("self/mountinfo"):
                return state.mountInfo
            case .proc("sys/kernel/osrelease"):
                return state.kernelRelease + "\n"
            case .moduleFile(let relative) where relative == "\(state.kernelRelease)/modules.alias":
                // What modules.alias says of VFIO drivers; vfio-pci's own alias is always there.
                return (["alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci"] + state.vfioAliases).joined(separator: "\n") + "\n"
            case .proc("swaps"):
                return "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
                    + state.visibleDisks.filter { $0.swap == true }.map { "/dev/\($0.name) partition\t8388604\t0\t-2\n" }.joined()
            default:
                throw IOFailure(.read, path, errno: .ENOENT)
            }
        }
    }

    package func write(_ path: String, _ value: String) throws(IOFailure) {
        defer {
            notifyIfEvents()
            afterWrite.withLock { $0 }?(path)
        }
        // Outside the model's lock: an unbind or VF teardown of a held device blocks its
        // writer until the holder lets go, as the kernel's does.
        let parsed = parse(path)
        while state.read({ $0.blocksWhileHeld(parsed, value) }) { sleep(for: .milliseconds(5)) }
        if case .driversProbe = parsed, let address = PCIAddress(firstLine(value)) {
            // Outside the model's lock, as a real hung or slow probe blocks only its own writer.
            while hungProbes.withLock({ $0.contains(address) }) { sleep(for: .milliseconds(5)) }
            sleep(for: probeTime.withLock { $0 })
        }
        try state.write { state throws(IOFailure) in
            let failure = { (errno: Errno) in IOFailure(.write, path, value: value, errno: errno) }
            if let injected = state.takeInjectedFault(path) { throw failure(injected) }
            switch parse(path) {
            case .deviceFile(let address, let name):
                if name.hasPrefix("driver/"), let driver = state.devices[address]?.driver, let registered = state.drivers[driver] {
                    // Through the device's own driver link, as `echo … > driver/unbind` does.
                    try Self.driverWrite(&state, registered, String(name.dropFirst(7)), value, failure)
                    return
                }
                do throws(Errno) { try state.writeAttribute(address, name, value) } catch { throw failure(error) }
            case .driversProbe:
                guard let address = PCIAddress(firstLine(value)), state.devices[address] != nil else { throw failure(.ENODEV) }
                state.attach(address)
            case .driverFile(let name, let file):
                guard let driver = state.drivers[name], driver.registered else { throw failure(.ENOENT) }
                try Self.driverWrite(&state, driver, file, value, failure)
            default:
                throw failure(.ENOENT)
            }
        }
    }

    private static func driverWrite(_ state: inout SimulatedState, _ driver: SimulatedState.Driver, _ file: String,
                                    _ value: String, _ failure: (Errno) -> IOFailure) throws(IOFailure) {
        switch file {
        case "bind":
            guard let address = PCIAddress(firstLine(value)), let device = state.devices[address],
                  state.matches(driver, device) else { throw failure(.ENODEV) }
            guard device.driver == nil else { throw failure(.EBUSY) }
            if let error = state.probeError(driver, device) { throw failure(error) }
            state.bind(address, to: driver.name)
        case "unbind":
            guard let address = PCIAddress(firstLine(value)), state.devices[address]?.driver == driver.name
            else { throw failure(.ENODEV) }
            state.unbind(address)
        case "new_id", "remove_id":
            let fields = firstLine(value).split(separator: " ")
            guard fields.count >= 2, let vendor = UInt16(fields[0], radix: 16), let device = UInt16(fields[1], radix: 16)
            else { throw failure(.EINVAL) }
            let id = PCIIDPattern(vendor: vendor, device: device)
            if file == "new_id" {
                guard !driver.dynamicIDs.contains(id) else { throw failure(.EEXIST) }
                state.drivers[driver.name]!.dynamicIDs.append(id)
                // Binds every unbound matching device; devices on other drivers stay.
                for address in state.devices.keys.sorted() where state.devices[address]!.driver == nil {
                    let candidate = state.devices[address]!
                    if state.matches(state.drivers[driver.name]!, candidate),
                       state.probeError(driver, candidate) == nil { state.bind(address, to: driver.name) }
                }
            } else {
                guard driver.dynamicIDs.contains(id) else { throw failure(.ENODEV) }
                state.drivers[driver.name]!.dynamicIDs.removeAll { $0 == id }
            }
        default:
            throw failure(.EACCES)
        }
    }

    package func readLink(_ path: String) throws(IOFailure) -> String {
        try state.read { state throws(IOFailure) in
            let missing = IOFailure(.readlink, path, errno: .ENOENT)
            switch parse(path) {
            case .deviceDir(let address):
                guard state.devices[address] != nil else { throw missing }
                return "../../.." + state.devpath(address)
            case .deviceFile(let address, "driver"):
                guard let driver = state.devices[address]?.driver else { throw missing }
                return "../../../bus/pci/drivers/\(driver)"
            case .deviceFile(let address, "iommu_group"):
                guard let group = state.devices[address]?.group else { throw missing }
                return "../../../kernel/iommu_groups/\(group)"
            case .deviceFile(let address, "physfn"):
                guard let device = state.devices[address], let pf = device.physfn, device.linked else { throw missing }
                return "../\(pf)"
            case .deviceFile(let address, let link) where link.hasPrefix("virtfn"):
                guard let index = Int(link.dropFirst(6)), index < state.vfs(of: address).count else { throw missing }
                return "../\(state.vfs(of: address)[index])"
            default:
                throw missing
            }
        }
    }

    package func list(_ path: String) throws(IOFailure) -> [String] {
        try state.read { state throws(IOFailure) in
            switch parse(path) {
            case .devicesDir: return state.devices.keys.sorted().map(\.description)
            case .driversDir: return state.driverOrder
            case .groupsDir: return state.groupMembers.filter { !$0.value.isEmpty }.keys.sorted().map(String.init)
            case .groupDevices(let group):
                let members = state.members(of: group)
                guard !members.isEmpty else { throw IOFailure(.list, path, errno: .ENOENT) }
                return members.map(\.description)
            case .vfioDir: return ["vfio"] + state.nodes.keys.sorted().map(String.init)
            case .deviceDir(let address):
                do throws(Errno) { return try state.listDevice(address, "") } catch { throw IOFailure(.list, path, errno: error) }
            case .classDir("net"): return state.visibleInterfaces.map(\.name)
            case .classDir("block"): return state.visibleDisks.map(\.name)
            case .moduleHolders("vfio_pci_core"):
                return state.drivers.values.filter { $0.registered && $0.vfio }.map(\.module)
            case .moduleDrivers(let module):
                let drivers = state.drivers.values.filter { $0.registered && $0.module == module }.map { "pci:\($0.name)" }
                guard !drivers.isEmpty else { throw IOFailure(.list, path, errno: .ENOENT) }
                return drivers
            case .nvmeSubsystem(let name, ""):
                let (controllers, namespaces) = state.nvmeSubsystem(name)
                guard !controllers.isEmpty || !namespaces.isEmpty else { throw IOFailure(.list, path, errno: .ENOENT) }
                return controllers.map(\.1) + namespaces
            case .classEntry("block", let name, "holders"):
                guard let (_, disk) = state.disk(name) else { throw IOFailure(.list, path, errno: .ENOENT) }
                return disk.holders ?? []
            case .deviceFile(let address, "vfio-dev"):
                guard let number = state.devices[address]?.deviceNode else { throw IOFailure(.list, path, errno: .ENOENT) }
                return ["vfio\(number)"]
            case .deviceFile(let address, let below):
                do throws(Errno) { return try state.listDevice(address, below) } catch { throw IOFailure(.list, path, errno: error) }
            default: throw IOFailure(.list, path, errno: .ENOENT)
            }
        }
    }

    package func exists(_ path: String) -> Bool {
        state.read { state in
            switch parse(path) {
            case .deviceDir(let address): state.devices[address] != nil
            case .deviceFile(let address, let below) where below.hasPrefix("vfio-dev/"):
                state.devices[address]?.deviceNode.map { below == "vfio-dev/vfio\($0)" || below == "vfio-dev/vfio\($0)/dev" } ?? false
            case .deviceFile(let address, let below): (try? state.resolveDevicePath(address, below)) != nil
            case .driverDir(let name): state.drivers[name]?.registered == true
            case .vfioNode(let group): state.nodes[group] != nil
            case .vfioDeviceNode(let number): state.deviceNodes[number] != nil
            case .classDir("vfio-dev"): state.deviceNodesEnabled
            case .devicesDir, .driversDir, .groupsDir, .driversProbe: true
            default: false
            }
        }
    }

    package func nodeState(_ path: String) throws(IOFailure) -> NodeState? {
        state.read { state in
            let node: SimulatedState.Node?
            switch parse(path) {
            case .vfioNode(let group): node = state.nodes[group]
            case .vfioDeviceNode(let number): node = state.deviceNodes[number]
            default: node = nil
            }
            return node.map { NodeState(uid: $0.uid, gid: $0.gid, mode: $0.mode) }
        }
    }

    package func setNodeAccess(_ path: String, uid: UInt32?, gid: UInt32?, mode: UInt16?, device: UInt64?) throws(IOFailure) {
        try state.write { state throws(IOFailure) in
            func apply(_ node: inout SimulatedState.Node) {
                if let uid { node.uid = uid }
                if let gid { node.gid = gid }
                if let mode { node.mode = mode }
            }
            switch parse(path) {
            case .vfioNode(let group) where state.nodes[group] != nil:
                apply(&state.nodes[group]!)
            case .vfioDeviceNode(let number) where state.deviceNodes[number] != nil:
                if let device, device != SimulatedState.deviceNodeNumber(number) {
                    throw IOFailure(.open, path, errno: .ESTALE, detail: "the node is another device's now, left alone")
                }
                apply(&state.deviceNodes[number]!)
            default:
                throw IOFailure(.open, path, errno: .ENOENT)
            }
        }
    }

    package func nodeAccess(_ path: String) throws(IOFailure) -> IOMMUAccess? {
        state.read { state in
            guard case .devNode("iommu") = parse(path), let iommu = state.iommu else { return nil }
            return (iommu.acl ?? POSIXACL(mode: iommu.node.mode)).access(owner: iommu.node.uid, group: iommu.node.gid)
        }
    }

    package func grantNodeAccess(_ path: String, users: [UInt32], groups: [UInt32]) throws(IOFailure) {
        try state.write { state throws(IOFailure) in
            guard case .devNode("iommu") = parse(path), let iommu = state.iommu else { throw IOFailure(.open, path, errno: .ENOENT) }
            var acl = iommu.acl ?? POSIXACL(mode: iommu.node.mode)
            acl.grant(users: users, groups: groups)
            state.iommu!.acl = acl
        }
    }

    package func inode(_ path: String) throws(IOFailure) -> UInt64 {
        try state.read { state throws(IOFailure) in
            guard case .deviceDir(let address) = parse(path), let device = state.devices[address] else {
                throw IOFailure(.stat, path, errno: .ENOENT)
            }
            return UInt64(device.inode)
        }
    }

    package func resolve(_ path: String) throws(IOFailure) -> String {
        try state.read { state throws(IOFailure) in
            let resolved: String
            switch parse(path) {
            case .deviceDir(let address):
                do throws(Errno) { resolved = try state.resolveDevicePath(address, "") } catch { throw IOFailure(.realpath, path, errno: error) }
            case .deviceFile(let address, let below):
                do throws(Errno) { resolved = try state.resolveDevicePath(address, below) } catch { throw IOFailure(.realpath, path, errno: error) }
            case .classEntry("net", let name, ""):
                guard let (address, _) = state.interface(name) else { throw IOFailure(.realpath, path, errno: .ENOENT) }
                resolved = "/sys" + state.devpath(address) + "/net/\(name)"
            case .classEntry("block", let name, ""):
                guard let (address, disk) = state.disk(name) else { throw IOFailure(.realpath, path, errno: .ENOENT) }
                if let subsystem = disk.multipath {
                    resolved = "/sys/devices/virtual/nvme-subsystem/\(subsystem)/\(name)"
                } else {
                    resolved = "/sys" + state.devpath(address) + "/block/\(name)"
                }
            case .nvmeSubsystem(let name, let entry) where !entry.isEmpty:
                guard let (address, controller) = state.nvmeSubsystem(name).controllers.first(where: { $0.1 == entry }) else {
                    throw IOFailure(.realpath, path, errno: .ENOENT)
                }
                resolved = "/sys" + state.devpath(address) + "/nvme/\(controller)"
            default:
                throw IOFailure(.realpath, path, errno: .ENOENT)
            }
            return paths.under(resolved)
        }
    }

    package func readBytes(_ path: String, offset: Int, count: Int) throws(IOFailure) -> [UInt8] {
        try state.read { state throws(IOFailure) in
            guard case .deviceFile(let address, "config") = parse(path), let device = state.devices[address]
            else { throw IOFailure(.read, path, errno: .ENOENT) }
            guard offset < device.config.count else { return [] }
            return Array(device.config[offset..<min(device.config.count, offset + count)])
        }
    }

    package func writeBytes(_ path: String, offset: Int, _ bytes: [UInt8]) throws(IOFailure) {
        try state.write { state throws(IOFailure) in
            let value = bytes.map { hex($0, width: 2) }.joined(separator: " ") + " at \(hex(offset, width: 3))"
            guard case .deviceFile(let address, "config") = parse(path), let device = state.devices[address]
            else { throw IOFailure(.write, path, value: value, errno: .ENOENT) }
            if state.lockdown { throw IOFailure(.write, path, value: value, errno: .EPERM) }
            guard offset + bytes.count <= device.config.count else { throw IOFailure(.write, path, value: value, errno: .EINVAL) }
            state.devices[address]!.config.replaceSubrange(offset..<offset + bytes.count, with: bytes)
        }
    }

    // MARK: Holders

    /// A process opens `/dev/vfio/<group>` (a VMM starting), or closes every hold of it.
    func holdNode(_ group: Int, pid: Int32, command: String) {
        state.write { $0.nodeOpeners[group, default: []].append(NodeOpener(device: SimulatedState.vfioDeviceNumber(group), pid: pid, command: command)) }
    }

    func closeNode(_ group: Int) {
        state.write { $0.nodeOpeners[group] = nil }
    }

    package func deviceNumber(_ path: String) -> UInt64? {
        switch parse(path) {
        case .vfioNode(let group) where state.read({ $0.nodes[group] != nil }):
            return SimulatedState.vfioDeviceNumber(group)
        case .vfioDeviceNode(let number) where state.read({ $0.deviceNodes[number] != nil }):
            return SimulatedState.deviceNodeNumber(number)
        default:
            return nil
        }
    }

    package func openers(of devices: Set<UInt64>) -> [NodeOpener] {
        state.read { state in state.nodeOpeners.values.joined().filter { devices.contains($0.device) } }.sorted { ($0.pid, $0.device) < ($1.pid, $1.device) }
    }

    package func tryExclusiveOpen(_ path: String) -> Errno? {
        guard case .devNode(let name) = parse(path) else { return .ENOENT }
        return state.read { state in
            guard let (_, disk) = state.disk(name) else { return .ENOENT }
            if let denied = disk.probeDenied { return denied == "EACCES" ? .EACCES : .EPERM }
            return disk.isBusy ? .EBUSY : nil
        }
    }

    // MARK: Beneath a device directory

    /// The device whose directory `base` is, or the failure an open of it would give.
    private func deviceBase(_ base: String, _ operation: IOFailure.Operation) throws(IOFailure) -> PCIAddress {
        guard case .deviceDir(let address) = parse(base) else { throw IOFailure(operation, base, errno: .ENOENT) }
        return address
    }

    package func entry(beneath base: String, _ relative: String) throws(IOFailure) -> EntryKind? {
        let address = try deviceBase(base, .stat)
        return try state.read { state throws(IOFailure) in
            guard state.devices[address] != nil else { throw IOFailure(.stat, base, errno: .ENOENT) }
            do throws(Errno) { return try state.entryKind(address, relative) } catch {
                throw IOFailure(.stat, base + "/" + relative, errno: error)
            }
        }
    }

    package func list(beneath base: String, _ relative: String) throws(IOFailure) -> [String] {
        let address = try deviceBase(base, .list)
        return try state.read { state throws(IOFailure) in
            do throws(Errno) { return try state.listBeneath(address, relative) } catch {
                throw IOFailure(.list, base + "/" + relative, errno: error)
            }
        }
    }

    package func read(beneath base: String, _ relative: String) throws(IOFailure) -> String {
        let address = try deviceBase(base, .read)
        return try state.read { state throws(IOFailure) in
            do throws(Errno) { return try state.readBeneath(address, relative) } catch {
                throw IOFailure(.read, base + "/" + relative, errno: error)
            }
        }
    }

    package func write(beneath base: String, _ relative: String, _ value: String) throws(IOFailure) {
        let path = base + "/" + relative
        defer {
            notifyIfEvents()
            afterWrite.withLock { $0 }?(path)
        }
        guard case .deviceDir(let address) = parse(base) else { throw IOFailure(.write, base, value: value, errno: .ENOENT) }
        try state.write { state throws(IOFailure) in
            let failure = { (errno: Errno) in IOFailure(.write, path, value: value, errno: errno) }
            if let injected = state.takeInjectedFault(path) { throw failure(injected) }
            do throws(Errno) { try state.writeBeneath(address, relative, value) } catch { throw failure(error) }
        }
    }

    package func loadModule(_ name: String) throws(IOFailure) {
        defer { notifyIfEvents() }
        try state.write { state throws(IOFailure) in
            let wanted = name.replacing("-", with: "_")
            guard let driver = state.drivers.values.first(where: {
                $0.module == wanted || $0.name.replacing("-", with: "_") == wanted
            }), driver.loadable else {
                throw IOFailure(.modprobe, name, errno: .ENOENT,
                                detail: "modprobe: FATAL: Module \(name) not found in directory /lib/modules/simulated")
            }
            state.register(driver.name)
        }
    }
}

package enum SimulationError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    package var description: String {
        switch self { case .invalid(let what): "invalid host description: \(what)" }
    }
}

/// A path under the simulated root, as the model understands it.
enum SimulatedPath: Equatable {
    case devicesDir, deviceDir(PCIAddress), deviceFile(PCIAddress, String)
    case driversDir, driverDir(String), driverFile(String, String), driversProbe
    case groupsDir, groupDevices(Int)
    case vfioDir, vfioNode(Int)
    /// `/dev/vfio/devices/vfioN`.
    case vfioDeviceNode(Int)
    /// `/sys/class/net`, and `/sys/class/net/eno1/flags` as ("net", "eno1", "flags").
    case classDir(String), classEntry(String, String, String)
    case proc(String)
    /// `/sys/devices/virtual/nvme-subsystem/<subsystem>[/<entry>]`.
    case nvmeSubsystem(String, String)
    /// `/dev/<name>`: a block device node.
    case devNode(String)
    /// A file below `/lib/modules` (`<release>/modules.alias`).
    case moduleFile(String)
    /// `/sys/module/<module>/drivers` and `/sys/module/<module>/holders`.
    case moduleDrivers(String)
    case moduleHolders(String)
    case other

    init(_ path: String, root: HostPaths) {
        let relative = root.root == "/" ? path : (path.hasPrefix(root.root + "/") ? String(path.dropFirst(root.root.count)) : "")
        let parts = relative.split(separator: "/").map(String.init)
        switch parts.count {
        case 4 where parts[0...3] == ["sys", "bus", "pci", "devices"]: self = .devicesDir
        case 4 where parts[0...3] == ["sys", "bus", "pci", "drivers"]: self = .driversDir
        case 4 where parts[0...3] == ["sys", "bus", "pci", "drivers_probe"]: self = .driversProbe
        case 3 where parts == ["sys", "kernel", "iommu_groups"]: self = .groupsDir
        case 2 where parts == ["dev", "vfio"]: self = .vfioDir
        case 3 where parts[0...1] == ["dev", "vfio"]: self = Int(parts[2]).map { .vfioNode($0) } ?? .other
        case 4 where parts[0...2] == ["dev", "vfio", "devices"] && parts[3].hasPrefix("vfio"):
            self = Int(parts[3].dropFirst(4)).map { .vfioDeviceNode($0) } ?? .other
        case 2 where parts[0] == "dev": self = .devNode(parts[1])
        case 4... where parts[0...1] == ["lib", "modules"] || parts[0...2] == ["usr", "lib", "modules"]:
            self = .moduleFile(parts[(parts[0] == "lib" ? 2 : 3)...].joined(separator: "/"))
        case 4 where parts[0...1] == ["sys", "module"] && parts[3] == "drivers": self = .moduleDrivers(parts[2])
        case 4 where parts[0...1] == ["sys", "module"] && parts[3] == "holders": self = .moduleHolders(parts[2])
        case 5 where parts[0...3] == ["sys", "devices", "virtual", "nvme-subsystem"]: self = .nvmeSubsystem(parts[4], "")
        case 6 where parts[0...3] == ["sys", "devices", "virtual", "nvme-subsystem"]: self = .nvmeSubsystem(parts[4], parts[5])
        case 5 where parts[0...2] == ["sys", "kernel", "iommu_groups"] && parts[4] == "devices":
            self = Int(parts[3]).map { .groupDevices($0) } ?? .other
        case 5 where parts[0...3] == ["sys", "bus", "pci", "devices"]:
            self = PCIAddress(parts[4]).map { .deviceDir($0) } ?? .other
        case 6... where parts[0...3] == ["sys", "bus", "pci", "devices"]:
            self = PCIAddress(parts[4]).map { .deviceFile($0, parts[5...].joined(separator: "/")) } ?? .other
        case 3 where parts[0...1] == ["sys", "class"]: self = .classDir(parts[2])
        case 4... where parts[0...1] == ["sys", "class"]: self = .classEntry(parts[2], parts[3], parts[4...].joined(separator: "/"))
        case 2... where parts[0] == "proc": self = .proc(parts[1...].joined(separator: "/"))
        case 5 where parts[0...3] == ["sys", "bus", "pci", "drivers"]: self = .driverDir(parts[4])
        case 6 where parts[0...3] == ["sys", "bus", "pci", "drivers"]: self = .driverFile(parts[4], parts[5])
        default: self = .other
        }
    }
}
