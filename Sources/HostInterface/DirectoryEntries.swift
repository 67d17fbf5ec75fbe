import CLinux
import Glibc
import Policy

/// The names in a directory but `.` and `..`, read from a descriptor (closed here): the
/// one directory loop, for sysfs listings and for trusted directories alike. It reads
/// with getdents64 itself: readdir would need fdopendir's fstat and fcntl first, two
/// system calls more per listing.
package struct DirectoryEntries {
    /// The names that are UTF-8.
    package var names: [String] = []
    /// The others, shown escaped (`\xff`): such a name cannot be told apart from another
    /// once decoded.
    package var undecodable: [String] = []

    package init(names: [String] = [], undecodable: [String] = []) {
        self.names = names
        self.undecodable = undecodable
    }

    /// Reads the directory open as `fd`, which is closed; nil (errno set) when it cannot
    /// be read as one.
    package init?(closing fd: Int32) {
        defer {
            let error = errno
            close(fd)
            errno = error
        }
        // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
        // Not zeroed first (16 KiB of stores per listing): only the bytes getdents64 says
        // it wrote are read.
        var buffer = [UInt8](unsafeUninitializedCapacity: 16 << 10) { _, count in count = 16 << 10 }
        while true {
            let count = buffer.withUnsafeMutableBytes { hotplug_agent_getdents64(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { return }
            var offset = 0
            while offset + 19 < count {
                let length = Int(buffer[offset + 16]) | Int(buffer[offset + 17]) << 8
                guard length > 19, offset + length <= count else { break }
                let name = buffer[(offset + 19)..<(offset + length)].prefix { $0 != 0 }
                offset += length
                guard !name.elementsEqual([UInt8(ascii: ".")]),
                    !name.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")])
                else { continue }
                if let text = String(validating: name, as: UTF8.self) {
                    names.append(text)
                } else {
                    undecodable.append(
                        name.map { $0 < 0x80 ? String(UnicodeScalar($0)) : "\\x" + hex(UInt32($0), width: 2) }
                            .joined())
                }
            }
        }
    }
}
