import Glibc

/// Notices changes to the policy directories (inotify), so the daemon reloads by itself: a
/// file added, replaced, renamed or removed, and the way a Kubernetes ConfigMap volume
/// changes (a new timestamped directory, then its `..data` symlink renamed over the old
/// one, all inside the watched directory). The daemon waits for a quiet moment before it
/// reloads, so a burst of changes is one reload.
final class PolicyWatcher: @unchecked Sendable {  // used by the daemon's one thread
    let fileDescriptor: Int32

    /// Watches those of `directories` that exist; nil when inotify is not to be had.
    init?(directories: [String]) {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        let mask = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)
        var watched = 0
        for directory in directories where inotify_add_watch(fd, directory, mask | UInt32(IN_ONLYDIR)) >= 0 { watched += 1 }
        guard watched > 0 else {
            close(fd)
            return nil
        }
        fileDescriptor = fd
    }

    deinit { close(fileDescriptor) }

    /// Reads every pending event; true when there was any.
    func drain() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16384)
        var any = false
        while buffer.withUnsafeMutableBytes({ Glibc.read(fileDescriptor, $0.baseAddress, $0.count) }) > 0 { any = true }
        return any
    }
}
