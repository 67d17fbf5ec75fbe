import Glibc

/// An errno value with its symbolic name and text: `Device or resource busy (EBUSY)`.
package struct Errno: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    package let rawValue: Int32

    package init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's errno.
    package static var current: Errno { Errno(errno) }

    package static let EPERM = Errno(Glibc.EPERM)
    package static let ENOENT = Errno(Glibc.ENOENT)
    package static let EINTR = Errno(Glibc.EINTR)
    package static let EIO = Errno(Glibc.EIO)
    package static let ENXIO = Errno(Glibc.ENXIO)
    package static let EAGAIN = Errno(Glibc.EAGAIN)
    package static let ENOMEM = Errno(Glibc.ENOMEM)
    package static let EACCES = Errno(Glibc.EACCES)
    package static let EBUSY = Errno(Glibc.EBUSY)
    package static let EEXIST = Errno(Glibc.EEXIST)
    package static let ENODEV = Errno(Glibc.ENODEV)
    package static let ENOTDIR = Errno(Glibc.ENOTDIR)
    package static let EISDIR = Errno(Glibc.EISDIR)
    package static let EINVAL = Errno(Glibc.EINVAL)
    package static let EROFS = Errno(Glibc.EROFS)
    package static let ENAMETOOLONG = Errno(Glibc.ENAMETOOLONG)
    package static let ENOSPC = Errno(Glibc.ENOSPC)
    package static let ERANGE = Errno(Glibc.ERANGE)
    package static let ELOOP = Errno(Glibc.ELOOP)
    package static let ENOBUFS = Errno(Glibc.ENOBUFS)
    package static let ETIMEDOUT = Errno(Glibc.ETIMEDOUT)
    package static let EOPNOTSUPP = Errno(Glibc.EOPNOTSUPP)
    package static let ENOSYS = Errno(Glibc.ENOSYS)
    package static let EXDEV = Errno(Glibc.EXDEV)
    package static let ESRCH = Errno(Glibc.ESRCH)
    package static let ENODATA = Errno(Glibc.ENODATA)
    package static let ESTALE = Errno(Glibc.ESTALE)
    package static let EFBIG = Errno(Glibc.EFBIG)
    package static let EILSEQ = Errno(Glibc.EILSEQ)

    private static let names: [Int32: String] = [
        Glibc.EPERM: "EPERM", Glibc.ENOENT: "ENOENT", Glibc.EINTR: "EINTR", Glibc.EIO: "EIO",
        Glibc.ENXIO: "ENXIO", Glibc.EAGAIN: "EAGAIN", Glibc.ENOMEM: "ENOMEM", Glibc.EACCES: "EACCES",
        Glibc.EBUSY: "EBUSY", Glibc.EEXIST: "EEXIST", Glibc.ENODEV: "ENODEV", Glibc.ENOTDIR: "ENOTDIR",
        Glibc.EISDIR: "EISDIR", Glibc.EINVAL: "EINVAL", Glibc.ENOSPC: "ENOSPC", Glibc.ERANGE: "ERANGE",
        Glibc.ELOOP: "ELOOP", Glibc.ENOBUFS: "ENOBUFS", Glibc.ETIMEDOUT: "ETIMEDOUT",
        Glibc.EOPNOTSUPP: "EOPNOTSUPP", Glibc.EROFS: "EROFS", Glibc.ENAMETOOLONG: "ENAMETOOLONG",
        Glibc.ENOSYS: "ENOSYS", Glibc.EXDEV: "EXDEV", Glibc.ESRCH: "ESRCH", Glibc.ENODATA: "ENODATA",
        Glibc.ESTALE: "ESTALE", Glibc.EFBIG: "EFBIG", Glibc.EILSEQ: "EILSEQ"
    ]

    package var name: String { Self.names[rawValue] ?? "errno \(rawValue)" }
    package var text: String { String(cString: strerror(rawValue)) }
    package var description: String { "\(text) (\(name))" }
}
