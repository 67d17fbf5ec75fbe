import Glibc
import Policy

/// The names in a directory but `.` and `..`, read from a descriptor (closed here): the
/// one readdir loop, for sysfs listings and for trusted directories alike.
package struct DirectoryEntries {
    /// The names that are UTF-8.
    package var names: [String] = []
    /// The others, shown escaped (`\xff`): such a name cannot be told apart from another
    /// once decoded.
    package var undecodable: [String] = []

    /// Reads the directory open as `fd`, which is closed; nil (errno set) when it cannot
    /// be read as one.
    package init?(closing fd: Int32) {
        guard let dir = fdopendir(fd) else {
            let error = errno
            close(fd)
            errno = error
            return nil
        }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let bytes = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            guard bytes != [UInt8(ascii: ".")], bytes != [UInt8(ascii: "."), UInt8(ascii: ".")] else { continue }
            if let name = String(validating: bytes, as: UTF8.self) {
                names.append(name)
            } else {
                undecodable.append(
                    bytes.map { $0 < 0x80 ? String(UnicodeScalar($0)) : "\\x" + hex(UInt32($0), width: 2) }
                        .joined())
            }
        }
    }
}
