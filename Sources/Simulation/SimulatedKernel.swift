import Glibc
import HostInterface
import Policy
import Synchronization

/// The simulated host's kernel: answers the agent's file operations on `/sys` and `/dev`
/// under its root the way Linux does, and queues the uevents Linux would send. The agent
/// runs the same code on it as on a real host; only this lowest layer differs.
package final class SimulatedKernel: KernelIO, PollableEventSource, Sendable {
    package let paths: HostPaths
    let state: ReadWriteLocked<SimulatedState>
    /// `/sys/bus/pci/devices/` under the root and the other prefixes the agent reads
    /// under all the time: paths that start so parse fast.
    let devicePrefix: String, groupPrefix: String, driverPrefix: String, vfioPrefix: String
    let fixedPaths: [String: SimulatedPath]
    /// Called after each write the agent makes, outside the model's lock: tests use it to
    /// make the world change between two of the agent's writes.
    let afterWrite = Mutex<(@Sendable (String) -> Void)?>(nil)
    /// Readable while uevents wait, like a netlink socket; see `drain()`.
    package let fileDescriptor: Int32
    let notifyFD: Int32
    /// Writes of `drivers_probe` that never return (a probe that hangs) until released.
    let hungProbes = Mutex<Set<PCIAddress>>([])
    /// How long a probe through drivers_probe takes (vfio-pci's function reset: 100 ms or
    /// more), spent outside the model's lock so probes of different devices overlap.
    package let probeTime = Mutex<Duration>(.zero)

    package init(_ description: HostDescription, paths: HostPaths = HostPaths(root: "/")) throws(SimulationError) {
        self.paths = paths
        devicePrefix = paths.pciDevices + "/"
        groupPrefix = paths.iommuGroups + "/"
        driverPrefix = paths.pciDrivers + "/"
        vfioPrefix = paths.under("/dev/vfio/")
        fixedPaths = [
            paths.pciDevices: .devicesDir, paths.pciDrivers: .driversDir, paths.driversProbe: .driversProbe,
            paths.iommuGroups: .groupsDir, paths.under("/dev/vfio"): .vfioDir,
            paths.under("/dev/iommu"): .devNode("iommu")
        ]
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
                vfio: driver.vfio ?? VFIODrivers().contains(driver.name))
            if driver.loaded { state.driverOrder.append(driver.name) }
        }
        for device in description.devices {
            let parsed = try Self.device(device)
            state.insert(parsed)
        }
        // A description may name a device before its parent.
        for address in state.devices.keys { state.devices[address]!.devpath = state.walkDevpath(address) }
        state.deviceNodesEnabled = description.vfioDeviceNodes ?? false
        state.kernelRelease = description.kernelRelease ?? state.kernelRelease
        state.vfioAliases = description.vfioAliases ?? []
        if state.deviceNodesEnabled { state.iommu = (SimulatedState.Node(mode: 0o660, inode: 1), nil) }
        // Devices that start on a VFIO driver have their group's node already.
        for device in state.devices.values.sorted(by: { $0.address < $1.address }) {
            if state.isVFIO(device.driver), let group = device.group, state.nodes[group] == nil {
                state.nodes[group] = SimulatedState.Node(inode: state.nextInode)
                state.nextInode += 1
            }
            if state.isVFIO(device.driver), state.deviceNodesEnabled {
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
    func notifyIfEvents() {
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
            sriov = SimulatedState.SRIOV(
                total: capability.totalVFs, autoprobe: capability.autoprobe ?? true,
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
            guard let byte = UInt8(digits[index..<next], radix: 16) else {
                throw .invalid("\(address): config \(digits[index..<next])")
            }
            bytes.append(byte)
            index = next
        }
        return bytes
    }

    // MARK: The simulation's own controls (tests, `simulate`)

    /// Like a netlink socket with a full receive buffer: past `capacity` queued events the
    /// rest are lost, and the next drain says so (ENOBUFS).
    func limitEventQueue(to capacity: Int) { state.write { $0.eventCapacity = capacity } }

    /// Forgets the binds and attribute writes it keeps for tests to look at: a benchmark of
    /// memory over many cycles measures the agent, not this record.
    package func forgetHistory() {
        state.write {
            $0.history.removeAll()
            $0.attributeWrites.removeAll()
        }
    }

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

    /// Makes every resolution of `path` fail with EIO.
    func failResolving(_ path: String) { state.write { _ = $0.resolveFaults.insert(path) } }

    /// Makes every reading of the link at `path` fail with EIO.
    func failReadingLink(_ path: String) { state.write { _ = $0.linkFaults.insert(path) } }

    /// Makes every reading (or listing, for a directory) of `path` fail with EIO, or work again.
    func failReading(_ path: String, _ failing: Bool = true) {
        state.write { if failing { $0.readFaults.insert(path) } else { $0.readFaults.remove(path) } }
    }

    /// Makes the next `times` writes to a path ending in `suffix` fail with `errno`.
    func injectWriteFailure(endingIn suffix: String, _ errno: Errno, times: Int = 1) {
        state.write { $0.writeFaults[suffix] = (errno, times) }
    }

    /// While held, new VFs stay between their `add` and their links.
    func holdVFLinks() { state.write { $0.holdVFLinks = true } }
    func releaseVFLinks() { state.write { $0.releaseVFLinks() } }

    /// Reads the model directly, for assertions and the end-state report.
    package func inspect<T>(_ body: (SimulatedState) -> T) -> T { state.read { body($0) } }

    package func loadModule(_ name: String) throws(IOFailure) {
        defer { notifyIfEvents() }
        try state.write { state throws(IOFailure) in
            let wanted = name.replacing("-", with: "_")
            guard
                let driver = state.drivers.values.first(where: {
                    $0.module == wanted || $0.name.replacing("-", with: "_") == wanted
                }), driver.loadable
            else {
                throw IOFailure(
                    .modprobe, name, errno: .ENOENT,
                    detail: "modprobe: FATAL: Module \(name) not found in directory /lib/modules/simulated")
            }
            state.register(driver.name)
        }
    }
}
