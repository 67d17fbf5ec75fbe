import HostInterface
import Glibc
import Policy

/// Performs the steps the planner chose, one sysfs write at a time, and verifies each
/// outcome from sysfs rather than trusting the write.
package struct Executor: Sendable {
    package let io: any KernelIO
    package let paths: HostPaths
    package let reader: SysfsReader
    /// How long to wait for a probe that binds asynchronously (`driver_async_probe=`).
    package let bindSettle: Duration
    /// Where moved devices came from; nil when the agent keeps no state.
    package var origins: OriginStore? = nil
    /// The `/dev/iommu` ACL entries the agent added; nil when it keeps no state.
    package var iommuGrants: IOMMUGrantStore? = nil
    /// Told when a write or module load may wait in the kernel (see `ReconcileQueue`).
    package let slowCalls = SlowCalls()

    /// `seen`: the device as the plan read it, when no step since can have moved it; a
    /// bind or unbind then starts from it instead of reading it again.
    package func perform(_ step: Step, on address: PCIAddress, seen: PCIDevice? = nil) throws(AgentError) {
        switch step.action {
        case .loadModule(let name):
            defer { reader.driverCache.forget() }
            try attempt(address) { () throws(IOFailure) in try io.loadModule(name) }
            guard io.exists(paths.driver(name)) else { throw .driverMissing(name) }
        case .bind(let driver, _):
            do { try bind(address, to: driver, seen: seen) } catch {
                // The drivers kept may be out of date (a module dropped unannounced).
                reader.driverCache.forget()
                throw error
            }
        case .unbind:
            try keepUnbound(address, seen: seen)
        case .setNodeAccess(let group, let owner, let nodeGroup, let mode):
            try attempt(address) { () throws(IOFailure) in
                try io.setNodeAccess(paths.vfioNode(group), uid: owner?.id, gid: nodeGroup?.id, mode: mode)
            }
        case .setDeviceNodeAccess(let name, let owner, let nodeGroup, let mode):
            // The node is the device's only while its vfio-dev entry names it: read its
            // number from there, and change the node only while it is still that number.
            // Confined below the device's directory, no link followed.
            let number = try attempt(address) { () throws(IOFailure) in
                try io.read(beneath: paths.device(address), "vfio-dev/\(name)/dev")
            }
            guard let device = deviceNumber(number) else {
                throw .malformed(
                    path: paths.attribute(address, "vfio-dev/\(name)/dev"), value: firstLine(number),
                    expected: "major:minor")
            }
            try attempt(address) { () throws(IOFailure) in
                try io.setNodeAccess(
                    paths.under("/dev/vfio/devices/\(name)"), uid: owner?.id, gid: nodeGroup?.id, mode: mode,
                    device: device)
            }
        case .grantIOMMU(let users, let groups):
            // One read-modify-write of the ACL at a time: workers granting at once would
            // each write back what they read, losing the other's entries.
            try iommuACL.withLock { _ throws(AgentError) in
                try attempt(address) { () throws(IOFailure) in
                    let iommu = paths.under("/dev/iommu")
                    let made = try io.grantNodeAccess(iommu, users: users.map(\.id), groups: groups.map(\.id))
                    // Entries that cannot be recorded could never be taken back: none is left.
                    do throws(IOFailure) { try iommuGrants?.update(adding: made) } catch {
                        try? io.revokeNodeAccess(iommu, users: made.users, groups: made.groups)
                        throw error
                    }
                }
            }
        case .writeAttribute(let path, let value):
            try writeAttribute(address, path, value)
        case .writeConfig(let offset, let width, let value, let mask, _):
            try writeConfig(address, offset: offset, width: width, value: value, mask: mask)
        case .restore(let origin):
            try restore(address, to: origin)
        case .forgetOrigin:
            try attempt(address) { () throws(IOFailure) in try origins?.forget(address) }
        case .setAutoprobe(let on):
            try recordSRIOVOrigin(address, seen: seen)
            try write(paths.attribute(address, "sriov_drivers_autoprobe"), on ? "1\n" : "0\n", device: address)
        case .setVFCount(let count):
            let held = reader.holders(address, group: nil)
            if !held.lines.isEmpty { throw .held(address, held.lines, held.pids) }
            try recordSRIOVOrigin(address, seen: seen)
            // VFs come or go, and with them members of IOMMU groups.
            defer { reader.groups.forgetAll() }
            try write(paths.attribute(address, "sriov_numvfs"), String(count) + "\n", device: address)
            let read = firstLine(
                try attempt(address) { () throws(IOFailure) in try io.read(paths.attribute(address, "sriov_numvfs")) })
            guard Int(read) == count else {
                throw .didNotStick(address, what: "sriov_numvfs", wanted: String(count), read: read)
            }
        }
    }

    /// Takes back `/dev/iommu` ACL entries the agent added, and forgets them.
    package func revokeIOMMU(_ grants: IOMMUGrants) throws(IOFailure) {
        try iommuACL.withLock { _ throws(IOFailure) in
            let iommu = paths.under("/dev/iommu")
            try io.revokeNodeAccess(iommu, users: grants.users, groups: grants.groups)
            // A record that still names them would later take back an admin's entry for the
            // same user: where it cannot be changed, the entries are put back as recorded.
            do throws(IOFailure) { try iommuGrants?.update(removing: grants) } catch {
                _ = try? io.grantNodeAccess(iommu, users: grants.users, groups: grants.groups)
                throw error
            }
        }
    }

    /// Writes `value` (as `echo` would, with a newline; empty is "\n") to a device's own
    /// attribute, whatever a plan says and whatever changed since planning: the name must
    /// be one a `sysfs` entry may write, no directory on the way may be a device of another
    /// bus, and the kernel resolves the path beneath the device directory without
    /// following a link (ELOOP or EXDEV otherwise).
    private func writeAttribute(_ address: PCIAddress, _ relative: String, _ value: String) throws(AgentError) {
        // On the `/` byte, as the kernel will walk it (see `TrustedPath.components`).
        let components = relative.split(byte: UInt8(ascii: "/"), omittingEmptySubsequences: false).map(String.init)
        if components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
            throw .refusedAttribute(address, path: relative, why: "not a plain relative path")
        }
        if let why = SysfsRules.refusal(of: components) { throw .refusedAttribute(address, path: relative, why: why) }
        let directory = paths.device(address)
        let walker = AttributeWalker(io: io, directory: directory)
        for depth in 1..<components.count {
            if let why = walker.anotherDevice(components[..<depth].joined(separator: "/")) {
                throw .refusedAttribute(address, path: relative, why: why)
            }
        }
        try attempt(address) { () throws(IOFailure) in try io.write(beneath: directory, relative, value + "\n") }
    }

    /// Read-modify-write of `width` bytes: only the bits in `mask` change; read back after.
    private func writeConfig(
        _ address: PCIAddress, offset: Int, width: Int, value: UInt32, mask: UInt32
    ) throws(AgentError) {
        let path = paths.attribute(address, "config")
        func current() throws(AgentError) -> UInt32 {
            let bytes = try attempt(address) { () throws(IOFailure) in
                try io.readBytes(path, offset: offset, count: width)
            }
            guard bytes.count == width else {
                throw .malformed(
                    path: path, value: "\(bytes.count) bytes at \(hex(offset, width: 3))", expected: "\(width)")
            }
            return ConfigSpace(bytes).value(at: 0, width: width)!
        }
        let before = try current()
        let wanted = (before & ~mask) | (value & mask)
        guard wanted != before else { return }
        let bytes = (0..<width).map { UInt8(truncatingIfNeeded: wanted >> (8 * UInt32($0))) }
        do {
            try attempt(address) { () throws(IOFailure) in try io.writeBytes(path, offset: offset, bytes) }
        } catch .io(var failure) where failure.errno == .EPERM {
            failure.detail = "kernel lockdown forbids config space writes"
            throw .io(failure)
        }
        let after = try current()
        guard after & mask == value & mask else {
            throw .didNotStick(
                address, what: "config \(hex(offset, width: 3))", wanted: hex(wanted, width: width * 2),
                read: hex(after, width: width * 2))
        }
    }

    /// driver_override, unbind the current driver, drivers_probe, then check the link. When
    /// the new driver does not take the device, it goes back where it was: its old
    /// override, and its old driver, so nothing is left half done.
    private func bind(_ address: PCIAddress, to driver: String, seen: PCIDevice?) throws(AgentError) {
        // The plan saw the driver registered, unless a module was loaded for it since.
        if seen == nil, !io.exists(paths.driver(driver)) { throw .driverMissing(driver) }
        let before: PCIDevice
        if let seen { before = seen } else { before = try reader.device(address) }
        try recordOrigin(before, movedTo: driver)
        try setOverride(address, driver, now: before.driverOverride)
        if let current = before.driver, current != driver {
            try unbind(address, from: current)
        }
        try write(paths.driversProbe, address.description, device: address)
        let now = try waitForDriver(address, driver)
        guard now != driver else { return }
        let failure = AgentError.notBound(address, wanted: driver, actual: now)
        guard now == nil else { throw failure }
        throw restore(address, before, after: failure)
    }

    /// Writes, before the first change, where the device came from; a later move keeps
    /// that origin and only notes where the device goes now.
    private func recordOrigin(_ before: PCIDevice, movedTo target: String) throws(AgentError) {
        guard let origins else { return }
        var origin =
            origins.load(before.address, of: before.id)
            ?? DriverOrigin(driver: before.driver, override: before.driverOverride, movedTo: target)
        origin.movedTo = target
        origin.device = before.id
        try attempt(before.address) { () throws(IOFailure) in try origins.save(before.address, origin) }
    }

    /// Before the agent first changes a PF's SR-IOV state, what it was, so that it can go
    /// back when no policy wants the PF; a record it already has is kept. `seen`: the PF as
    /// this reconcile read it, where no step has moved it since.
    private func recordSRIOVOrigin(_ address: PCIAddress, seen: PCIDevice?) throws(AgentError) {
        guard let origins else { return }
        // A whole record (SR-IOV state and device) is kept as it is, without a look at the PF
        // (a later round of the reconcile has none at hand): the reader judged it for this PF.
        if let kept = origins.load(address), kept.sriov != nil, let recorded = kept.device,
            seen.map({ $0.id == recorded }) ?? true
        {
            return
        }
        let before: PCIDevice
        if let seen { before = seen } else { before = try reader.device(address) }
        // Here a record lacks the SR-IOV state, or `device=` (an older build's: it gains one,
        // as a moved driver's does), or was another card's (then it is gone).
        var origin =
            origins.load(address, of: before.id)
            ?? DriverOrigin(driver: before.driver, override: before.driverOverride, movedTo: nil)
        if origin.sriov == nil {
            guard let now = reader.sriov(address) else { return }
            origin.sriov = SRIOVOrigin(numVFs: now.numVFs, autoprobe: now.autoprobe)
        }
        origin.device = before.id
        try attempt(address) { () throws(IOFailure) in try origins.save(address, origin) }
    }

    /// Back to the recorded override and driver (or unbound), then the record goes.
    private func restore(_ address: PCIAddress, to origin: DriverOrigin) throws(AgentError) {
        try write(paths.attribute(address, "driver_override"), origin.override ?? "\n", device: address)
        if let current = try reader.driver(of: address) { try unbind(address, from: current) }
        if let driver = origin.driver {
            do {
                try write(paths.driver(driver) + "/bind", address.description, device: address)
            } catch .io(let failure) where failure.errno == .ENODEV || failure.errno == .ENOENT {
                try write(paths.driversProbe, address.description, device: address)
            }
            let now = try waitForDriver(address, driver)
            guard now == driver else { throw .notBound(address, wanted: driver, actual: now) }
        }
        origins?.remove(address)
    }

    /// The driver link once it names `driver`, or whatever it names when the wait is over.
    private func waitForDriver(_ address: PCIAddress, _ driver: String) throws(AgentError) -> String? {
        let deadline = ContinuousClock.now + bindSettle
        var pause = Duration.milliseconds(5)
        // A bind mostly settles within the write that asked for it: the queue hears of the
        // wait only once there is one.
        var waiting = false
        defer { if waiting { slowCalls.leave(address) } }
        while true {
            let now = try reader.driver(of: address)
            if now == driver || ContinuousClock.now >= deadline { return now }
            if !waiting {
                waiting = true
                slowCalls.enter(address)
            }
            sleep(for: min(pause, deadline - ContinuousClock.now))
            pause = min(pause * 2, .milliseconds(200))
        }
    }

    /// Puts back the override and driver a failed bind took away; the error says how far it got.
    private func restore(_ address: PCIAddress, _ before: PCIDevice, after failure: AgentError) -> AgentError {
        do {
            try write(paths.attribute(address, "driver_override"), before.driverOverride ?? "\n", device: address)
            if let old = before.driver {
                try write(paths.driver(old) + "/bind", address.description, device: address)
                if try waitForDriver(address, old) != old { return .restoreFailed(failure, old) }
            }
            return .restored(failure, before.driver)
        } catch {
            return .restoreFailed(failure, before.driver)
        }
    }

    /// `driver = "none"`: an override no driver matches, then unbind.
    private func keepUnbound(_ address: PCIAddress, seen: PCIDevice?) throws(AgentError) {
        let before: PCIDevice
        if let seen { before = seen } else { before = try reader.device(address) }
        try recordOrigin(before, movedTo: "none")
        try setOverride(address, "none", now: before.driverOverride)
        if let current = before.driver { try unbind(address, from: current) }
        if let still = try reader.driver(of: address) { throw .notBound(address, wanted: "none", actual: still) }
    }

    /// `now`: the override read just before.
    private func setOverride(_ address: PCIAddress, _ driver: String, now: String?) throws(AgentError) {
        guard now != driver else { return }
        try write(paths.attribute(address, "driver_override"), driver, device: address)
    }

    private func unbind(_ address: PCIAddress, from driver: String) throws(AgentError) {
        // A VM may have opened the device since it was planned: the kernel's unbind would
        // block until it let go. Asked again right before, never waited for in the kernel.
        if reader.vfioDrivers().contains(driver) {
            let held = reader.holders(address, group: try reader.device(address).iommuGroup)
            if !held.lines.isEmpty { throw .held(address, held.lines, held.pids) }
        }
        do {
            try attempt(address) { () throws(IOFailure) in
                try io.write(paths.driver(driver) + "/unbind", address.description)
            }
        } catch .io(let failure) where failure.errno == .ENODEV {
            // Unbound meanwhile (or by someone else): what we wanted; the probe decides.
            if try reader.driver(of: address) == driver { throw .io(failure) }
        }
    }

    private func write(_ path: String, _ value: String, device: PCIAddress) throws(AgentError) {
        try attempt(device) { () throws(IOFailure) in try io.write(path, value) }
    }

    /// Runs one lowest-layer operation for a device: a failure names the device, and one
    /// because the device left becomes `.gone`.
    ///
    /// The next step per errno: EAGAIN and EINTR are tried once more; a device gone
    /// (ENOENT/ENODEV with its directory gone) ends its reconcile quietly; anything else
    /// fails the action, and the device is tried again on its next event.
    @discardableResult
    private func attempt<T>(_ device: PCIAddress, _ operation: () throws(IOFailure) -> T) throws(AgentError) -> T {
        slowCalls.enter(device)
        defer { slowCalls.leave(device) }
        do {
            do {
                return try operation()
            } catch where error.errno == .EAGAIN || error.errno == .EINTR {
                sleep(for: .milliseconds(10))
                return try operation()
            }
        } catch var failure {
            failure.device = device
            if failure.meansGone && failure.operation != .modprobe && !io.exists(paths.device(device)) {
                throw .gone(device)
            }
            throw .io(failure)
        }
    }
}

/// Serializes changes to `/dev/iommu`'s ACL across workers.
private let iommuACL = Locked(())

/// Where the executor says a worker may wait in the kernel for a device: a write (a
/// driver's probe or remove, VFs made) or a module load. Routed to the queue whose worker
/// it is, once there is one (an executor used alone tells no one).
package final class SlowCalls: Sendable {
    private let queue = Locked<ReconcileQueue?>(nil)

    package init() {}

    func route(to queue: ReconcileQueue) { self.queue.withLock { $0 = queue } }
    func enter(_ device: PCIAddress) { queue.withLock { $0 }?.enterSlowCall(for: device) }
    func leave(_ device: PCIAddress) { queue.withLock { $0 }?.leaveSlowCall(for: device) }
}
