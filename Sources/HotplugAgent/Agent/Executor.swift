import Glibc
import Policy

/// Performs the steps the planner chose, one sysfs write at a time, and verifies each
/// outcome from sysfs rather than trusting the write.
struct Executor: Sendable {
    let io: any KernelIO
    let paths: HostPaths
    let reader: SysfsReader
    /// How long to wait for a probe that binds asynchronously (`driver_async_probe=`).
    let bindSettle: Duration

    func perform(_ step: Step, on address: PCIAddress) throws(AgentError) {
        switch step.action {
        case .loadModule(let name):
            try attempt(address) { () throws(IOFailure) in try io.loadModule(name) }
            guard io.exists(paths.driver(name)) else { throw .driverMissing(name) }
        case .bind(let driver, _):
            try bind(address, to: driver)
        case .unbind:
            try keepUnbound(address)
        case .setNodeAccess(let group, let owner, let nodeGroup, let mode):
            try attempt(address) { () throws(IOFailure) in
                try io.setNodeAccess(paths.vfioNode(group), uid: owner?.id, gid: nodeGroup?.id, mode: mode)
            }
        }
    }

    /// driver_override, unbind the current driver, drivers_probe, then check the link.
    private func bind(_ address: PCIAddress, to driver: String) throws(AgentError) {
        guard io.exists(paths.driver(driver)) else { throw .driverMissing(driver) }
        try setOverride(address, driver)
        if let current = try reader.device(address).driver, current != driver {
            try unbind(address, from: current)
        }
        try write(paths.driversProbe, address.description, device: address)
        let deadline = ContinuousClock.now + bindSettle
        var pause = Duration.milliseconds(5)
        while true {
            let now = try reader.device(address).driver
            if now == driver { return }
            if ContinuousClock.now >= deadline { throw .notBound(address, wanted: driver, actual: now) }
            sleep(for: min(pause, deadline - ContinuousClock.now))
            pause = min(pause * 2, .milliseconds(200))
        }
    }

    /// `driver = "none"`: an override no driver matches, then unbind.
    private func keepUnbound(_ address: PCIAddress) throws(AgentError) {
        try setOverride(address, "none")
        if let current = try reader.device(address).driver { try unbind(address, from: current) }
        if let still = try reader.device(address).driver { throw .notBound(address, wanted: "none", actual: still) }
    }

    private func setOverride(_ address: PCIAddress, _ driver: String) throws(AgentError) {
        guard try reader.device(address).driverOverride != driver else { return }
        try write(paths.attribute(address, "driver_override"), driver, device: address)
    }

    private func unbind(_ address: PCIAddress, from driver: String) throws(AgentError) {
        do {
            try attempt(address) { () throws(IOFailure) in try io.write(paths.driver(driver) + "/unbind", address.description) }
        } catch .io(let failure) where failure.errno == .ENODEV {
            // Unbound meanwhile (or by someone else): what we wanted; the probe decides.
            if try reader.device(address).driver == driver { throw .io(failure) }
        }
    }

    private func write(_ path: String, _ value: String, device: PCIAddress) throws(AgentError) {
        try attempt(device) { () throws(IOFailure) in try io.write(path, value) }
    }

    /// Runs one lowest-layer operation for a device: a failure names the device, and one
    /// because the device left becomes `.gone`.
    private func attempt(_ device: PCIAddress, _ operation: () throws(IOFailure) -> Void) throws(AgentError) {
        do {
            try operation()
        } catch var failure {
            failure.device = device
            if failure.meansGone && failure.operation != .modprobe && !io.exists(paths.device(device)) { throw .gone(device) }
            throw .io(failure)
        }
    }
}

/// Blocks the calling thread; used only while an action waits for the kernel.
func sleep(for duration: Duration) {
    guard duration > .zero else { return }
    let (seconds, attoseconds) = duration.components
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}
