import Glibc
import HostInterface
import Policy

/// The simulated kernel's config space files: read with pread, written with pwrite.
extension SimulatedKernel {
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
            guard offset + bytes.count <= device.config.count else {
                throw IOFailure(.write, path, value: value, errno: .EINVAL)
            }
            state.devices[address]!.config.replaceSubrange(offset..<offset + bytes.count, with: bytes)
        }
    }
}
