import Glibc
import HostInterface
import Policy

/// Writes to a driver's own files (bind, unbind, new_id, remove_id) in the simulated kernel.
extension SimulatedKernel {
    static func driverWrite(
        _ state: inout SimulatedState, _ driver: SimulatedState.Driver, _ file: String,
        _ value: String, _ failure: (Errno) -> IOFailure
    ) throws(IOFailure) {
        switch file {
        case "bind":
            guard let address = PCIAddress(firstLine(value)), let device = state.devices[address],
                state.matches(driver, device)
            else { throw failure(.ENODEV) }
            guard device.driver == nil else { throw failure(.EBUSY) }
            if let error = state.probeError(driver, device) { throw failure(error) }
            state.bind(address, to: driver.name)
        case "unbind":
            guard let address = PCIAddress(firstLine(value)), state.devices[address]?.driver == driver.name
            else { throw failure(.ENODEV) }
            state.unbind(address)
        case "new_id", "remove_id":
            let fields = firstLine(value).split(separator: " ")
            guard fields.count >= 2, let vendor = UInt16(fields[0], radix: 16),
                let device = UInt16(fields[1], radix: 16)
            else { throw failure(.EINVAL) }
            let id = PCIIDPattern(vendor: vendor, device: device)
            if file == "new_id" {
                guard !driver.dynamicIDs.contains(id) else { throw failure(.EEXIST) }
                state.drivers[driver.name]!.dynamicIDs.append(id)
                // Binds every unbound matching device; devices on other drivers stay.
                for address in state.devices.keys.sorted() where state.devices[address]!.driver == nil {
                    let candidate = state.devices[address]!
                    if state.matches(state.drivers[driver.name]!, candidate),
                        state.probeError(driver, candidate) == nil
                    {
                        state.bind(address, to: driver.name)
                    }
                }
            } else {
                guard driver.dynamicIDs.contains(id) else { throw failure(.ENODEV) }
                state.drivers[driver.name]!.dynamicIDs.removeAll { $0 == id }
            }
        default:
            throw failure(.EACCES)
        }
    }
}
