import CLinux
import Glibc
import HostInterface

/// A `--root` other than `/`, held open, to open paths below it as a chroot would: openat2
/// with RESOLVE_IN_ROOT from its descriptor, so an absolute link in the tree starts again at
/// the root and `..` never climbs above it. The tree is the admin's copy of a host, and a
/// link in it to `/sys`, `/dev` or `/run` (absolute, or climbing out with `..`) must not
/// lead what the agent changes, or the state it checks before changing, to this host's own.
/// Where the kernel has no openat2 (before 5.6) or a filter refuses it, nothing is opened.
package final class HeldRoot: Sendable {
    package let path: String
    /// -1 where the root could not be opened: then nothing is opened below it.
    private let descriptor: Int32

    /// Nil for `/`, where paths are opened as they are.
    package init?(_ root: String) {
        guard root != "/" else { return nil }
        path = root
        descriptor = Glibc.open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// A descriptor for the absolute `path` below the root, opened with `flags` (O_CLOEXEC
    /// added); -1 with errno set. A path that does not lie below the root is EXDEV.
    package func open(_ path: String, _ flags: Int32) -> Int32 {
        let prefix = self.path + "/"
        guard path.utf8.starts(with: prefix.utf8) else {
            errno = EXDEV
            return -1
        }
        let relative = String(decoding: path.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
        let resolve = HOTPLUG_AGENT_RESOLVE_IN_ROOT | HOTPLUG_AGENT_RESOLVE_NO_MAGICLINKS
        return hotplug_agent_openat2(descriptor, relative, UInt64(flags | O_CLOEXEC), resolve)
    }

    /// `stat` of the absolute `path` as it resolves below the root; false with errno set.
    package func stat(_ path: String, _ status: inout Glibc.stat) -> Bool {
        let fd = open(path, O_PATH)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return fstat(fd, &status) == 0
    }
}
