import CLinux
import Glibc
import HostInterface

/// Under `--root`, everything the agent changes is opened inside the root: a sysfs write, a
/// config write, a node's owner, mode or ACL, an exclusive open of a block device. The
/// tree is the admin's copy of a host, and a link in it to `/sys` or `/dev` (absolute, or
/// climbing out with `..`) must not lead the agent's writes to this host's own devices.
/// openat2 with RESOLVE_IN_ROOT resolves the path from the root's descriptor as a chroot
/// would: an absolute link starts again at the root, `..` never climbs above it. On the real
/// root (`/`) nothing changes: a plain open. Reading follows the tree's links as the kernel
/// does (a tree whose `sys` links to `/sys` shows this host's devices to `plan`, and `run`
/// changes none of them).
extension RealKernelIO {
    /// A descriptor for `path`, opened with `flags` (O_CLOEXEC added) inside the root;
    /// -1 with errno set. A path that does not lie below the root is EXDEV; where the kernel
    /// has no openat2 (before 5.6) or a filter refuses it, nothing is opened under a root.
    func openToChange(_ path: String, _ flags: Int32) -> Int32 {
        guard let rootDirectory else { return open(path, flags | O_CLOEXEC) }
        let prefix = paths.root + "/"
        guard path.utf8.starts(with: prefix.utf8) else {
            errno = EXDEV
            return -1
        }
        let relative = String(decoding: path.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
        let resolve = HOTPLUG_AGENT_RESOLVE_IN_ROOT | HOTPLUG_AGENT_RESOLVE_NO_MAGICLINKS
        return hotplug_agent_openat2(rootDirectory, relative, UInt64(flags | O_CLOEXEC), resolve)
    }

    /// The root's descriptor, where the root is not `/`: every change is opened from it.
    /// Nil on the real root; -1 (every change refused) where the root cannot be opened.
    static func openRoot(_ paths: HostPaths) -> Int32? {
        paths.root == "/" ? nil : open(paths.root, O_PATH | O_DIRECTORY | O_CLOEXEC)
    }
}
