import CLinux
import Glibc
import HostInterface

/// Confined: a path below a directory (a device's, in sysfs), resolved by the kernel
/// without leaving it and without following a symlink: where the kernel has openat2 (5.6+),
/// RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS, RESOLVE_NO_MAGICLINKS and RESOLVE_NO_XDEV; before
/// it, one component at a time with O_NOFOLLOW.
extension TrustedPath {
    /// A descriptor for `relative` below the directory `base`, opened with `flags`
    /// (O_CLOEXEC added), resolved without leaving `base` and without following any link.
    package static func openBeneath(_ base: String, _ relative: String, flags: Int32) throws(Errno) -> Int32 {
        let directory = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { throw .current }
        defer { close(directory) }
        return try openBeneath(directory, relative, flags: flags)
    }

    /// The same below the directory open as `directory` (`O_PATH` will do).
    package static func openBeneath(_ directory: Int32, _ relative: String, flags: Int32) throws(Errno) -> Int32 {
        let resolve =
            HOTPLUG_AGENT_RESOLVE_BENEATH | HOTPLUG_AGENT_RESOLVE_NO_SYMLINKS
            | HOTPLUG_AGENT_RESOLVE_NO_MAGICLINKS | HOTPLUG_AGENT_RESOLVE_NO_XDEV
        let fd = hotplug_agent_openat2(directory, relative.isEmpty ? "." : relative, UInt64(flags | O_CLOEXEC), resolve)
        if fd >= 0 { return fd }
        // ENOSYS before Linux 5.6; EPERM where a seccomp filter refuses the new call.
        guard Errno.current == .ENOSYS || Errno.current == .EPERM else { throw .current }
        var current = dup(directory)
        guard current >= 0 else { throw .current }
        // Split on the `/` byte, as the kernel does (as characters, a name beginning with a
        // combining mark would join the `/` before it, and two names go to one openat).
        let components = relative.split(byte: UInt8(ascii: "/")).map(String.init)
        for (index, component) in components.enumerated() {
            let last = index == components.count - 1
            let next = openat(current, component, (last ? flags : O_PATH | O_DIRECTORY) | O_NOFOLLOW | O_CLOEXEC)
            let failure = Errno.current
            close(current)
            guard next >= 0 else { throw failure }
            current = next
            // O_PATH|O_NOFOLLOW opens a symlink itself rather than failing: refuse it here.
            var st = stat()
            if fstat(current, &st) == 0, st.st_mode & S_IFMT == S_IFLNK {
                close(current)
                throw .ELOOP
            }
        }
        if components.isEmpty {
            let fd = openat(current, ".", flags | O_CLOEXEC)
            close(current)
            guard fd >= 0 else { throw .current }
            return fd
        }
        return current
    }
}
