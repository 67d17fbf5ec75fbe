import HostInterface
import CLinux
import Glibc

/// Paths below a device directory, confined by `TrustedPath.openBeneath`. Paths reaching
/// here never hold `..` or empty components (`AttributeWrite.parse`); the kernel's check is
/// the one that counts.
extension RealKernelIO {
    private func openBeneath(
        _ base: String, _ relative: String, _ flags: Int32,
        _ operation: IOFailure.Operation
    ) throws(IOFailure) -> Int32 {
        do throws(Errno) {
            // A write changes what is below the device: the device is reached as every
            // change is (`openToChange`: inside `--root`'s tree).
            guard operation == .write else { return try TrustedPath.openBeneath(base, relative, flags: flags) }
            let directory = openToChange(base, O_PATH | O_DIRECTORY)
            guard directory >= 0 else { throw Errno.current }
            defer { close(directory) }
            return try TrustedPath.openBeneath(directory, relative, flags: flags)
        } catch {
            throw IOFailure(operation, relative.isEmpty ? base : base + "/" + relative, errno: error)
        }
    }

    package func entry(beneath base: String, _ relative: String) throws(IOFailure) -> EntryKind? {
        let (directory, name) = split(relative)
        let parent: Int32
        do {
            parent = try openBeneath(base, directory, O_PATH | O_DIRECTORY, .stat)
        } catch where error.errno == .ENOENT {
            return nil
        }
        defer { close(parent) }
        var st = stat()
        guard fstatat(parent, name.isEmpty ? "." : name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
            if Errno.current == .ENOENT { return nil }
            throw IOFailure(.stat, base + "/" + relative, errno: .current)
        }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .file(readable: st.st_mode & 0o444 != 0)
        case S_IFLNK: return .symlink
        default: return .other
        }
    }

    package func list(beneath base: String, _ relative: String) throws(IOFailure) -> [String] {
        let fd = try openBeneath(base, relative, O_RDONLY | O_DIRECTORY, .list)
        guard let entries = DirectoryEntries(closing: fd) else {
            throw IOFailure(.list, base + "/" + relative, errno: .current)
        }
        return entries.names
    }

    package func read(beneath base: String, _ relative: String) throws(IOFailure) -> String {
        let fd = try openBeneath(base, relative, O_RDONLY | O_NONBLOCK, .read)
        defer { close(fd) }
        return try readAll(fd, path: base + "/" + relative)
    }

    package func write(beneath base: String, _ relative: String, _ value: String) throws(IOFailure) {
        let path = base + "/" + relative
        let fd: Int32
        do {
            fd = try openBeneath(base, relative, O_WRONLY | O_TRUNC, .write)
        } catch {
            throw IOFailure(.write, error.path, value: value, errno: error.errno)
        }
        defer { close(fd) }
        try writeAll(fd, value, path: path)
    }

    /// `a/b/c` → (`a/b`, `c`); `c` → (``, `c`).
    private func split(_ relative: String) -> (String, String) {
        // The last `/` byte, as the kernel splits paths (see `TrustedPath.components`).
        guard let slash = relative.utf8.lastIndex(of: UInt8(ascii: "/")) else { return ("", relative) }
        return (String(relative[..<slash]), String(relative[relative.utf8.index(after: slash)...]))
    }
}
