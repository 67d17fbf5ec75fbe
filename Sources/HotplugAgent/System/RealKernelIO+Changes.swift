import Glibc
import HostInterface

/// Under `--root`, everything the agent changes is opened inside the root (`HeldRoot`): a
/// sysfs write, a config write, a node's owner, mode or ACL, an exclusive open of a block
/// device. On the real root (`/`) nothing changes: a plain open. Reading follows the tree's
/// links as the kernel does (a tree whose `sys` links to `/sys` shows this host's devices to
/// `plan`, and `run` changes none of them).
extension RealKernelIO {
    /// A descriptor for `path`, opened with `flags` (O_CLOEXEC added) inside the root;
    /// -1 with errno set.
    func openToChange(_ path: String, _ flags: Int32) -> Int32 {
        guard let heldRoot else { return open(path, flags | O_CLOEXEC) }
        return heldRoot.open(path, flags)
    }
}
