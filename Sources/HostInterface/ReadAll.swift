import Glibc

/// What `fd` reads until its end, in `chunk`-sized reads: the one read loop for sysfs
/// attributes, trusted files, accounts and host descriptions. It stops once more than `limit`
/// bytes are in, so a caller tells a file over its limit by the count.
package func readAll(from fd: Int32, limit: Int = .max, chunk size: Int = 4096) throws(Errno) -> [UInt8] {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: size)
    while bytes.count <= limit {
        let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            throw .current
        }
        if count == 0 { break }
        bytes += chunk[..<count]
    }
    return bytes
}
