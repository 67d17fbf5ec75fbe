import Glibc
import HostInterface

/// A device's directory in one look, each entry one component opened with `O_NOFOLLOW`, so
/// none is reached through a link, and `O_NONBLOCK`, so no FIFO put where a file should be
/// hangs the agent.
///
/// Only a directory on the file system that is sysfs (`sysfs`) tells its device apart by
/// its inode, as each look finds it, whatever link led it there: kernfs never numbers two
/// directories alike, and one once removed never comes back. There the entries are read by
/// their paths and the directory `stat`ed after them: read under an inode the caller knows
/// (`DirectoryRequest.ofKnownDevice`), compared with that; read afresh, with one `stat`
/// before them, and taken only where both show the same directory (else read again as
/// below). Anywhere else (a test bed, `--root`), where a directory can be renamed away and
/// back and a deleted one's number is given to the next, the look goes through one `O_PATH`
/// descriptor: `fstat` for its file system and inode, `openat`/`readlinkat` relative to it.
extension RealKernelIO {
    package func readDirectory(
        _ directory: String, _ request: DirectoryRequest
    ) throws(IOFailure) -> DirectoryReading {
        if request.ofKnownDevice { return try byPath(directory, request) }
        // Afresh on sysfs: by path, between two `stat`s that must show the same directory
        // (two system calls where the descriptor takes three); one that changed during the
        // look (another device took the address) is read again through a descriptor.
        var before = stat()
        if let sysfs {
            guard stat(directory, &before) == 0 else { throw IOFailure(.read, directory, errno: .current) }
            if UInt64(before.st_dev) == sysfs && before.st_mode & S_IFMT == S_IFDIR {
                let reading = try byPath(directory, request)
                if reading.shows(fileSystem: UInt64(before.st_dev), inode: UInt64(before.st_ino)) { return reading }
            }
        }
        let fd = open(directory, O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw IOFailure(.read, directory, errno: .current) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw IOFailure(.read, directory, errno: .current) }
        return placed(try entries(request, of: directory, at: fd, prefix: ""), status)
    }

    /// The entries by their paths, then the directory's file system and inode after them.
    private func byPath(_ directory: String, _ request: DirectoryRequest) throws(IOFailure) -> DirectoryReading {
        let reading = try entries(request, of: directory, at: AT_FDCWD, prefix: directory + "/")
        var status = stat()
        guard stat(directory, &status) == 0 else { throw IOFailure(.stat, directory, errno: .current) }
        return placed(reading, status)
    }

    /// `reading` with the file system and inode `status` shows, and whether they tell its
    /// device apart (on sysfs only).
    private func placed(_ reading: DirectoryReading, _ status: stat) -> DirectoryReading {
        var reading = reading
        reading.inode = UInt64(status.st_ino)
        reading.fileSystem = UInt64(status.st_dev)
        reading.tellsDeviceApart = sysfs == reading.fileSystem
        return reading
    }

    /// The entries `request` names, each `prefix + name` relative to `base` (a descriptor of
    /// the directory, or `AT_FDCWD` with the directory's path as the prefix).
    private func entries(
        _ request: DirectoryRequest, of directory: String, at base: Int32, prefix: String
    ) throws(IOFailure) -> DirectoryReading {
        var reading = DirectoryReading(inode: 0)
        for name in request.files {
            let path = directory + "/" + name
            let file = openat(base, prefix + name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard file >= 0 else {
                if Errno.current == .ENOENT { continue }
                throw IOFailure(.read, path, errno: .current)
            }
            defer { close(file) }
            reading.files[name] = try readAll(file, path: path, shortReadEnds: true)
        }
        for name in request.links {
            do throws(Errno) {
                reading.links[name] = try readSymbolicLink(prefix + name, in: base)
            } catch where error == .ENOENT {
                continue
            } catch {
                throw Self.linkFailure(.readlink, directory + "/" + name, error)
            }
        }
        for name in request.listings(after: reading.links) {
            let listed = openat(base, prefix + name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard listed >= 0, let entries = DirectoryEntries(closing: listed) else {
                if Errno.current == .ENOENT || Errno.current == .ENOTDIR { continue }
                throw IOFailure(.list, directory + "/" + name, errno: .current)
            }
            reading.listings[name] = entries.names
        }
        return reading
    }
}
