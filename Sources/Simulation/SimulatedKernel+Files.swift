import Glibc
import HostInterface
import Policy

/// The file operations the agent makes (`KernelIO`), answered from the model as the
/// kernel would: each path parsed once into what it names, then read or changed under
/// the model's lock.
extension SimulatedKernel {
    /// A device, group, driver or vfio path by the fast path, anything else the long way.
    func parse(_ path: String) -> SimulatedPath {
        var path = path
        func hasPrefix(_ prefix: String) -> Bool {
            var prefix = prefix
            return path.withUTF8 { whole in
                prefix.withUTF8 { start in
                    whole.count >= start.count && memcmp(whole.baseAddress!, start.baseAddress!, start.count) == 0
                }
            }
        }
        if hasPrefix(devicePrefix) {
            let rest = path.utf8.dropFirst(devicePrefix.utf8.count)
            guard let address = PCIAddress(Substring(rest.prefix(12))) else { return .other }
            if rest.count == 12 { return .deviceDir(address) }
            let below = rest.dropFirst(12)
            guard below.first == UInt8(ascii: "/"), below.count > 1, below.last != UInt8(ascii: "/") else {
                return .other
            }
            return .deviceFile(address, String(Substring(below.dropFirst())))
        }
        if hasPrefix(groupPrefix) {
            // `<group>/devices`
            let rest = path.utf8.dropFirst(groupPrefix.utf8.count), suffix = "/devices".utf8
            guard rest.count > suffix.count, rest.suffix(suffix.count).elementsEqual(suffix),
                let group = Int(Substring(rest.dropLast(suffix.count)))
            else { return .other }
            return .groupDevices(group)
        }
        if hasPrefix(driverPrefix) {
            // `<driver>` or `<driver>/<file>`
            let parts = path.utf8.dropFirst(driverPrefix.utf8.count).split(
                separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
            switch parts.count {
            case 1 where !parts[0].isEmpty: return .driverDir(String(Substring(parts[0])))
            case 2 where !parts[0].isEmpty && !parts[1].isEmpty:
                return .driverFile(String(Substring(parts[0])), String(Substring(parts[1])))
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

    /// The single-path answers under one hold of the lock, as one look would give them. A
    /// device directory's entries are taken by its address and their names, as `openat`
    /// takes them relative to the directory, not from paths built and parsed again.
    package func readDirectory(
        _ directory: String, _ request: DirectoryRequest
    ) throws(IOFailure) -> DirectoryReading {
        let base = parse(directory)
        func entry(_ name: String) -> SimulatedPath {
            if case .deviceDir(let address) = base, !name.isEmpty, name.utf8.last != UInt8(ascii: "/") {
                return .deviceFile(address, name)
            }
            return parse(directory + "/" + name)
        }
        return try state.read { state throws(IOFailure) in
            if state.readFaults.contains(directory) { throw IOFailure(.read, directory, errno: .EIO) }
            guard case .deviceDir(let address) = base, let device = state.devices[address] else {
                throw IOFailure(.stat, directory, errno: .ENOENT)
            }
            var reading = try DirectoryReading.assembled(
                request, inode: UInt64(device.inode),
                read: { name throws(IOFailure) in try read(entry(name), directory + "/" + name, in: state) },
                readLink: { name throws(IOFailure) in try readLink(entry(name), directory + "/" + name, in: state) },
                list: { name throws(IOFailure) in try list(entry(name), directory + "/" + name, in: state) })
            // As sysfs: each device added gets a new inode number, and none comes back.
            reading.tellsDeviceApart = true
            return reading
        }
    }

    package func read(_ path: String) throws(IOFailure) -> String {
        try state.read { state throws(IOFailure) in try read(parse(path), path, in: state) }
    }

    /// `read` on the state already held (`readDirectory` takes the lock once).
    func read(
        _ parsed: SimulatedPath, _ path: @autoclosure () -> String, in state: SimulatedState
    ) throws(IOFailure) -> String {
        if !state.readFaults.isEmpty && state.readFaults.contains(path()) {
            throw IOFailure(.read, path(), errno: .EIO)
        }
        switch parsed {
        case .deviceFile(let address, let name):
            do throws(Errno) { return try state.readAttribute(address, name) } catch {
                throw IOFailure(.read, path(), errno: error)
            }
        case .classEntry("net", let name, "flags"):
            guard let (_, interface) = state.interface(name) else { throw IOFailure(.read, path(), errno: .ENOENT) }
            return interface.up ? "0x1003\n" : "0x1002\n"
        case .classEntry("block", let name, "dev"):
            guard let (_, disk) = state.disk(name) else { throw IOFailure(.read, path(), errno: .ENOENT) }
            return disk.dev + "\n"
        case .proc("self/mountinfo"):
            return state.mountInfo
        case .proc("sys/kernel/osrelease"):
            return state.kernelRelease + "\n"
        case .moduleFile(let relative) where relative == "\(state.kernelRelease)/modules.alias":
            // What modules.alias says of VFIO drivers; vfio-pci's own alias is always there.
            return (["alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci"] + state.vfioAliases).joined(separator: "\n")
                + "\n"
        case .proc("swaps"):
            return "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
                + state.visibleDisks.filter { $0.swap == true }.map {
                    "/dev/\($0.name) partition\t8388604\t0\t-2\n"
                }.joined()
        default:
            throw IOFailure(.read, path(), errno: .ENOENT)
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
            switch parsed {
            case .deviceFile(let address, let name):
                if name.hasPrefix("driver/"), let driver = state.devices[address]?.driver,
                    let registered = state.drivers[driver]
                {
                    // Through the device's own driver link, as `echo … > driver/unbind` does.
                    try Self.driverWrite(&state, registered, String(name.dropFirst(7)), value, failure)
                    return
                }
                do throws(Errno) { try state.writeAttribute(address, name, value) } catch { throw failure(error) }
            case .driversProbe:
                guard let address = PCIAddress(firstLine(value)), state.devices[address] != nil else {
                    throw failure(.ENODEV)
                }
                state.attach(address)
            case .driverFile(let name, let file):
                guard let driver = state.drivers[name], driver.registered else { throw failure(.ENOENT) }
                try Self.driverWrite(&state, driver, file, value, failure)
            default:
                throw failure(.ENOENT)
            }
        }
    }

    package func readLink(_ path: String) throws(IOFailure) -> String {
        try state.read { state throws(IOFailure) in try readLink(parse(path), path, in: state) }
    }

    /// `readLink` on the state already held (`readDirectory` takes the lock once).
    func readLink(
        _ parsed: SimulatedPath, _ path: @autoclosure () -> String, in state: SimulatedState
    ) throws(IOFailure) -> String {
        func missing() -> IOFailure { IOFailure(.readlink, path(), errno: .ENOENT) }
        if !state.linkFaults.isEmpty && state.linkFaults.contains(path()) {
            throw IOFailure(.readlink, path(), errno: .EIO)
        }
        switch parsed {
        case .deviceDir(let address):
            guard state.devices[address] != nil else { throw missing() }
            return "../../.." + state.devpath(address)
        case .deviceFile(let address, "driver"):
            guard let driver = state.devices[address]?.driver else { throw missing() }
            return "../../../bus/pci/drivers/\(driver)"
        case .deviceFile(let address, "iommu_group"):
            guard let group = state.devices[address]?.group else { throw missing() }
            return "../../../kernel/iommu_groups/\(group)"
        case .deviceFile(let address, "physfn"):
            guard let device = state.devices[address], let pf = device.physfn, device.linked else { throw missing() }
            return "../\(pf)"
        case .deviceFile(let address, let link) where link.hasPrefix("virtfn"):
            guard let index = Int(link.dropFirst(6)), index < state.vfs(of: address).count else { throw missing() }
            return "../\(state.vfs(of: address)[index])"
        case .proc("self/ns/pid"):
            return state.pidNamespace
        case .classEntry("net", _, ""), .classEntry("block", _, ""):
            // The kernel's link, relative to the class directory, to where `resolve` leads.
            guard let real = try? resolve(path(), in: state) else { throw missing() }
            return "../.." + real.dropFirst(paths.under("/sys").count)
        case .nvmeSubsystem(_, let entry) where !entry.isEmpty:
            // A controller's link, relative to `devices/virtual/nvme-subsystem/<subsystem>`.
            guard let real = try? resolve(path(), in: state) else { throw missing() }
            return "../../.." + real.dropFirst(paths.under("/sys/devices").count)
        default:
            throw missing()
        }
    }

    /// Every name the simulated kernel gives is a Swift string, so UTF-8.
    package func listing(_ path: String) throws(IOFailure) -> DirectoryEntries {
        DirectoryEntries(names: try list(path))
    }

    package func list(_ path: String) throws(IOFailure) -> [String] {
        try state.read { state throws(IOFailure) in try list(parse(path), path, in: state) }
    }

    /// `list` on the state already held (`readDirectory` takes the lock once).
    func list(
        _ parsed: SimulatedPath, _ path: @autoclosure () -> String, in state: SimulatedState
    ) throws(IOFailure) -> [String] {
        if !state.readFaults.isEmpty && state.readFaults.contains(path()) {
            throw IOFailure(.list, path(), errno: .EIO)
        }
        switch parsed {
        case .devicesDir: return state.devices.keys.sorted().map(\.description)
        case .driversDir: return state.driverOrder
        case .groupsDir: return state.groupMembers.keys.sorted().map(String.init)
        case .groupDevices(let group):
            let members = state.members(of: group)
            guard !members.isEmpty else { throw IOFailure(.list, path(), errno: .ENOENT) }
            return members.map(\.description)
        case .vfioDir: return ["vfio"] + state.nodes.keys.sorted().map(String.init)
        case .deviceDir(let address):
            do throws(Errno) { return try state.listDevice(address, "") } catch {
                throw IOFailure(.list, path(), errno: error)
            }
        case .classDir("net"): return state.visibleInterfaces.map(\.name)
        case .classDir("block"): return state.visibleDisks.map(\.name)
        case .moduleHolders("vfio_pci_core"):
            return state.drivers.values.filter { $0.registered && $0.vfio }.map(\.module)
        case .moduleDrivers(let module):
            let drivers = state.drivers.values.filter { $0.registered && $0.module == module }.map {
                "pci:\($0.name)"
            }
            guard !drivers.isEmpty else { throw IOFailure(.list, path(), errno: .ENOENT) }
            return drivers
        case .nvmeSubsystem(let name, ""):
            let (controllers, namespaces) = state.nvmeSubsystem(name)
            guard !controllers.isEmpty || !namespaces.isEmpty else { throw IOFailure(.list, path(), errno: .ENOENT) }
            return controllers.map(\.1) + namespaces
        case .classEntry("block", let name, "holders"):
            guard let (_, disk) = state.disk(name) else { throw IOFailure(.list, path(), errno: .ENOENT) }
            return disk.holders ?? []
        case .deviceFile(let address, "vfio-dev"):
            guard let number = state.devices[address]?.deviceNode else {
                throw IOFailure(.list, path(), errno: .ENOENT)
            }
            return ["vfio\(number)"]
        case .deviceFile(let address, let below):
            do throws(Errno) { return try state.listDevice(address, below) } catch {
                throw IOFailure(.list, path(), errno: error)
            }
        default: throw IOFailure(.list, path(), errno: .ENOENT)
        }
    }

    package func exists(_ path: String) -> Bool {
        state.read { state in
            switch parse(path) {
            case .deviceDir(let address): state.devices[address] != nil
            case .deviceFile(let address, let below) where below.hasPrefix("vfio-dev/"):
                state.devices[address]?.deviceNode.map {
                    below == "vfio-dev/vfio\($0)" || below == "vfio-dev/vfio\($0)/dev"
                } ?? false
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

    package func inode(_ path: String) throws(IOFailure) -> UInt64 {
        try state.read { state throws(IOFailure) in try inode(path, in: state) }
    }

    /// `inode` on the state already held (`readDirectory` takes the lock once).
    func inode(_ path: String, in state: SimulatedState) throws(IOFailure) -> UInt64 {
        guard case .deviceDir(let address) = parse(path), let device = state.devices[address] else {
            throw IOFailure(.stat, path, errno: .ENOENT)
        }
        return UInt64(device.inode)
    }

    package func resolve(_ path: String) throws(IOFailure) -> String {
        try state.read { state throws(IOFailure) in
            if state.resolveFaults.contains(path) { throw IOFailure(.realpath, path, errno: .EIO) }
            return try resolve(path, in: state)
        }
    }

    /// `resolve` on the state already held, faults aside.
    func resolve(_ path: String, in state: SimulatedState) throws(IOFailure) -> String {
        let resolved: String
        switch parse(path) {
        case .deviceDir(let address):
            do throws(Errno) { resolved = try state.resolveDevicePath(address, "") } catch {
                throw IOFailure(.realpath, path, errno: error)
            }
        case .deviceFile(let address, let below):
            do throws(Errno) { resolved = try state.resolveDevicePath(address, below) } catch {
                throw IOFailure(.realpath, path, errno: error)
            }
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
            guard let (address, controller) = state.nvmeSubsystem(name).controllers.first(where: { $0.1 == entry })
            else {
                throw IOFailure(.realpath, path, errno: .ENOENT)
            }
            resolved = "/sys" + state.devpath(address) + "/nvme/\(controller)"
        default:
            throw IOFailure(.realpath, path, errno: .ENOENT)
        }
        return paths.under(resolved)
    }
}
