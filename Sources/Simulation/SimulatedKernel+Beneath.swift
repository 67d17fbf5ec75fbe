import Glibc
import HostInterface
import Policy

/// Paths resolved beneath a device directory, never leaving it (see SimulatedState+Beneath).
extension SimulatedKernel {
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
        guard case .deviceDir(let address) = parse(base) else {
            throw IOFailure(.write, base, value: value, errno: .ENOENT)
        }
        try state.write { state throws(IOFailure) in
            let failure = { (errno: Errno) in IOFailure(.write, path, value: value, errno: errno) }
            if let injected = state.takeInjectedFault(path) { throw failure(injected) }
            do throws(Errno) { try state.writeBeneath(address, relative, value) } catch { throw failure(error) }
        }
    }
}
