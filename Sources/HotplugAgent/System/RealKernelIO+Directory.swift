import Glibc
import HostInterface

/// A device's directory in one look. Read afresh, through one `O_PATH` descriptor: `fstat`
/// for its file system and inode, `openat`/`readlinkat` relative to it for its entries, so
/// nothing is walked twice. Read under an inode the caller knows
/// (`DirectoryRequest.ofKnownDevice`, asked only where inodes tell devices apart), by each
/// entry's path and `stat` after them: two system calls fewer. Only a directory on the file
/// system that is sysfs tells its device apart (`sysfs`), as each look finds it, whatever
/// link led it there. Either way each entry is one component opened with `O_NOFOLLOW`, so
/// none is reached through a link, and `O_NONBLOCK`, so no FIFO put where a file should be
/// hangs the agent.
extension RealKernelIO {
    package func readDirectory(
        _ directory: String, _ request: DirectoryRequest
    ) throws(IOFailure) -> DirectoryReading {
        var status = stat()
        var reading: DirectoryReading
        if request.ofKnownDevice {
            reading = try entries(request, of: directory, at: AT_FDCWD, prefix: directory + "/")
            guard stat(directory, &status) == 0 else { throw IOFailure(.stat, directory, errno: .current) }
        } else {
            let fd = open(directory, O_PATH | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { throw IOFailure(.read, directory, errno: .current) }
            defer { close(fd) }
            guard fstat(fd, &status) == 0 else { throw IOFailure(.read, directory, errno: .current) }
            reading = try entries(request, of: directory, at: fd, prefix: "")
        }
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
