import HostInterface
import Policy

/// Why reading or acting on a device failed. Each case carries what an admin needs to act:
/// the device, the file, the value and the errno.
package enum AgentError: Error, Equatable, CustomStringConvertible {
    case io(IOFailure)
    /// An attribute that does not hold what the kernel writes there.
    case malformed(path: String, value: String, expected: String)
    /// The device left while it was read or acted on.
    case gone(PCIAddress)
    /// The probe returned but the device is not on the driver asked for.
    case notBound(PCIAddress, wanted: String, actual: String?)
    /// A module loaded but registered no driver of that name.
    case driverMissing(String)
    /// An attribute a `sysfs` entry may not write (another key's, another device's).
    case refusedAttribute(PCIAddress, path: String, why: String)
    /// A bind failed, and the device was put back on its old driver (nil: left unbound as it was).
    indirect case restored(AgentError, String?)
    /// A bind failed, and putting the device back on this driver failed too.
    indirect case restoreFailed(AgentError, String?)
    /// A VM holds the device's VFIO nodes (or its VFs'): the step waits until it lets go.
    case held(PCIAddress, [String], Set<Int32>)
    /// A write returned but reading back shows something else.
    case didNotStick(PCIAddress, what: String, wanted: String, read: String)

    package var description: String {
        switch self {
        case .io(let failure):
            return failure.description
        case .malformed(let path, let value, let expected):
            return "\(path) holds \(quoted(value)), expected \(expected)"
        case .gone(let address):
            return "\(address) left while it was being reconciled"
        case .notBound(let address, let wanted, let actual):
            return "\(address) did not bind to \(wanted) (driver now: \(actual ?? "none")); see the kernel log"
        case .driverMissing(let name):
            return "driver \(name) is not registered after loading its module"
        case .restored(let failure, let driver):
            return "\(failure); put back \(driver.map { "on \($0)" } ?? "unbound, as it was")"
        case .restoreFailed(let failure, let driver):
            return "\(failure); putting it back on \(driver ?? "no driver") failed too: the device is unbound"
        case .refusedAttribute(let address, let path, let why):
            return "\(address): \(path) is not written: \(why)"
        case .held(let address, let holders, _):
            return "\(address) is in use by a VM: \(holders.joined(separator: ", ")); waiting until it lets go"
        case .didNotStick(let address, let what, let wanted, let read):
            return "\(address): \(what) reads \(read) after writing \(wanted)"
        }
    }

    /// The device left. Only `.gone` says so: an ENOENT or ENODEV from a write is turned
    /// into `.gone` where the device's directory is gone too (see `Executor.attempt`); with
    /// the device still there it is a failure (`sriov_numvfs` answers ENOENT when the PF's
    /// driver cannot configure SR-IOV).
    package var isGone: Bool {
        if case .gone = self { return true }
        return false
    }
}
