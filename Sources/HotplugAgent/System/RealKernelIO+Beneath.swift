import HostInterface
import CLinux
import Glibc

/// Paths below a device directory, resolved by the kernel without leaving it and without
/// following a symlink: where the kernel has openat2 (5.6+), RESOLVE_BENEATH,
/// RESOLVE_NO_SYMLINKS, RESOLVE_NO_MAGICLINKS and RESOLVE_NO_XDEV; before it, one
/// component at a time with O_NOFOLLOW. Paths reaching here never hold `..` or empty
/// components (`AttributeWrite.parse`); the kernel's check is the one that counts.
extension RealKernelIO {
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
        guard let dir = fdopendir(fd) else {
            close(fd)
            throw IOFailure(.list, base + "/" + relative, errno: .current)
        }
        return Self.entries(closing: dir)
    }

    package func read(beneath base: String, _ relative: String) throws(IOFailure) -> String {
        let fd = try openBeneath(base, relative, O_RDONLY, .read)
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

    /// A descriptor for `relative` below `base` opened with `flags` (O_CLOEXEC added).
    private func openBeneath(_ base: String, _ relative: String, _ flags: Int32, _ operation: IOFailure.Operation) throws(IOFailure) -> Int32 {
        let path = relative.isEmpty ? base : base + "/" + relative
        let directory = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { throw IOFailure(operation, base, errno: .current) }
        defer { close(directory) }
        let resolve = HOTPLUG_AGENT_RESOLVE_BENEATH | HOTPLUG_AGENT_RESOLVE_NO_SYMLINKS
            | HOTPLUG_AGENT_RESOLVE_NO_MAGICLINKS | HOTPLUG_AGENT_RESOLVE_NO_XDEV
        let fd = hotplug_agent_openat2(directory, relative.isEmpty ? "." : relative, UInt64(flags | O_CLOEXEC), resolve)
        if fd >= 0 { return fd }
        // ENOSYS before Linux 5.6; EPERM where a seccomp filter refuses the new call.
        guard Errno.current == .ENOSYS || Errno.current == .EPERM else { throw IOFailure(operation, path, errno: .current) }
        var current = dup(directory)
        guard current >= 0 else { throw IOFailure(operation, path, errno: .current) }
        let components = relative.split(separator: "/").map(String.init)
        for (index, component) in components.enumerated() {
            let last = index == components.count - 1
            let next = openat(current, component, (last ? flags : O_PATH | O_DIRECTORY) | O_NOFOLLOW | O_CLOEXEC)
            let failure = Errno.current
            close(current)
            guard next >= 0 else { throw IOFailure(operation, path, errno: failure) }
            current = next
            // O_PATH|O_NOFOLLOW opens a symlink itself rather than failing: refuse it here.
            var st = stat()
            if fstat(current, &st) == 0, st.st_mode & S_IFMT == S_IFLNK {
                close(current)
                throw IOFailure(operation, path, errno: .ELOOP)
            }
        }
        if components.isEmpty {
            let fd = openat(current, ".", flags | O_CLOEXEC)
            close(current)
            guard fd >= 0 else { throw IOFailure(operation, path, errno: .current) }
            return fd
        }
        return current
    }

    /// `a/b/c` → (`a/b`, `c`); `c` → (``, `c`).
    private func split(_ relative: String) -> (String, String) {
        guard let slash = relative.lastIndex(of: "/") else { return ("", relative) }
        return (String(relative[..<slash]), String(relative[relative.index(after: slash)...]))
    }
}
