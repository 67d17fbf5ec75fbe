import Glibc

/// What `fd` reads until its end, in `chunk`-sized reads: the one read loop for sysfs
/// attributes, trusted files, accounts and host descriptions. It stops once more than `limit`
/// bytes are in, so a caller tells a file over its limit by the count. With `shortReadEnds`
/// a read that fills less than the chunk is the last: true of regular files and of sysfs
/// attributes (one `show()` of at most a page), not of /proc's sequence files.
package func readAll(
    from fd: Int32, limit: Int = .max, chunk size: Int = 4096, shortReadEnds: Bool = false
) throws(Errno) -> [UInt8] {
    var bytes: [UInt8] = []
    // Not zeroed first: only the bytes each read says it wrote are taken.
    var chunk = [UInt8](unsafeUninitializedCapacity: size) { _, count in count = size }
    while bytes.count <= limit {
        let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            throw .current
        }
        if count == 0 { break }
        bytes += chunk[..<count]
        if shortReadEnds && count < size { break }
    }
    return bytes
}
