import Policy

/// A failed file operation: what was done, to which file, with which value, and the errno.
package struct IOFailure: Error, Equatable, Sendable, CustomStringConvertible {
    package enum Operation: String, Sendable {
        case read, write, readlink, list, stat, open, chown, chmod, modprobe, realpath, getxattr, setxattr, unlink
    }

    package var operation: Operation
    /// The device the operation was for, when it was for one.
    package var device: PCIAddress?
    package var path: String
    package var value: String?
    package var errno: Errno
    /// Extra words from the operation itself (modprobe's own message).
    package var detail: String?

    package init(_ operation: Operation, _ path: String, value: String? = nil, errno: Errno, detail: String? = nil) {
        self.operation = operation
        self.path = path
        self.value = value
        self.errno = errno
        self.detail = detail
    }

    package var description: String {
        let what: String
        switch operation {
        case .write: what = "write \(quoted(value ?? "")) to \(path)"
        case .modprobe: what = "modprobe \(path)"
        default: what = "\(operation.rawValue) \(path)"
        }
        return "\(what): \(errno)" + (detail.map { ": \($0)" } ?? "")
    }

    /// The device or file is gone: the device left while it was read or acted on.
    package var meansGone: Bool { errno == .ENOENT || errno == .ENODEV }
}
