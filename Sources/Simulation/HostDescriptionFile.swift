import FoundationEssentials
import Glibc
import HostInterface

/// Why a host description file cannot be used, worded for `FILE: message`.
package struct HostFileError: Error, CustomStringConvertible {
    package let description: String
}

extension SimulatedKernel {
    /// The largest host description read: a recorded host of 4096 devices is about 8 MiB.
    package static let maxHostFileBytes = 64 << 20

    /// The host description in `file` (JSON, as `record` prints it) and a kernel built from it.
    package static func load(_ file: String) throws -> (HostDescription, SimulatedKernel) {
        let bytes = try readHostFile(file)
        let description: HostDescription
        do {
            description = try JSONDecoder().decode(HostDescription.self, from: Data(bytes))
        } catch {
            throw HostFileError(description: "not a host description: \(error)")
        }
        return (description, try SimulatedKernel(description))
    }

    /// The whole regular file, opened without blocking (a FIFO must not hang the command).
    private static func readHostFile(_ file: String) throws(HostFileError) -> [UInt8] {
        let fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw HostFileError(description: "cannot open: \(Errno.current)") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw HostFileError(description: "cannot stat: \(Errno.current)") }
        guard st.st_mode & S_IFMT == S_IFREG else { throw HostFileError(description: "not a regular file") }
        guard st.st_size <= maxHostFileBytes else {
            throw HostFileError(description: "larger than \(maxHostFileBytes >> 20) MiB (\(st.st_size) bytes); refused")
        }
        let bytes: [UInt8]
        do {
            bytes = try readAll(from: fd, limit: maxHostFileBytes, chunk: 1 << 16)
        } catch {
            throw HostFileError(description: "cannot read: \(error)")
        }
        guard bytes.count <= maxHostFileBytes else {
            throw HostFileError(description: "larger than \(maxHostFileBytes >> 20) MiB; refused")
        }
        return bytes
    }
}
