import HostInterface
import Glibc

/// Notices changes to the policy directories (inotify), so the daemon reloads by itself: a
/// file added, replaced, renamed or removed, and the way a Kubernetes ConfigMap volume
/// changes (a new timestamped directory, then its `..data` symlink renamed over the old
/// one, all inside the watched directory). The daemon waits for a quiet moment before it
/// reloads, so a burst of changes is one reload.
///
/// A directory that does not exist yet, or is deleted and made again, is still noticed: for
/// a missing directory the nearest existing one above it is watched, for the creation of
/// the next name on the way only, and every change looks again at what to watch
/// (`inotify_add_watch` on a directory already watched only gives its descriptor back).
package final class PolicyWatcher: @unchecked Sendable {  // used by the daemon's one thread
    package let fileDescriptor: Int32
    private let directories: [String]
    /// Watch descriptors: nil for a policy directory itself (every change counts), else
    /// the names whose creation below that ancestor counts.
    private var watches: [Int32: Set<String>?] = [:]

    private static let directoryMask = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE
        | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
    /// An ancestor's own removal or rename counts too: the walk must go up from there.
    private static let ancestorMask = UInt32(IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
    private static let selfEnded = UInt32(IN_DELETE_SELF | IN_MOVE_SELF)

    /// Watches `directories` (absolute), or the nearest existing directory above each;
    /// nil when inotify is not to be had.
    package init?(directories: [String]) {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        fileDescriptor = fd
        self.directories = directories
        watchAgain()
    }

    deinit { close(fileDescriptor) }

    /// Reads every pending event; true when one of them concerns a policy directory (the
    /// watches are then renewed for directories made, deleted or made again).
    package func drain() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16384)
        var relevant = false
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fileDescriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            var offset = 0
            let header = MemoryLayout<inotify_event>.size
            while offset + header <= count {
                let (wd, mask, length) = buffer.withUnsafeBytes { raw in
                    let event = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                    return (event.wd, event.mask, Int(event.len))
                }
                let nameBytes = buffer[(offset + header)..<min(count, offset + header + length)]
                let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
                offset += header + length
                if mask & UInt32(IN_Q_OVERFLOW) != 0 { relevant = true; continue }
                guard let names = watches[wd] else { continue }
                // The end of a watch follows the event that ended it (IN_DELETE_SELF,
                // IN_UNMOUNT), which counted already; a read that split the two must not
                // make a second reload of it.
                if mask & UInt32(IN_IGNORED) != 0 {
                    watches[wd] = nil
                    continue
                }
                if mask & Self.selfEnded != 0 || names.map({ $0.contains(name) }) ?? true { relevant = true }
            }
        }
        if relevant { watchAgain() }
        return relevant
    }

    /// Each policy directory if it exists, else the nearest directory above it that does.
    /// A watch no walk needs now is removed: a policy directory renamed away (a swap leaves
    /// one per swap, each counted against the user's inotify limit, and changes in it made
    /// reloads), an ancestor watched while a directory was missing.
    private func watchAgain() {
        var live = Set<Int32>()
        for directory in directories { watch(directory, into: &live) }
        for wd in Array(watches.keys) where !live.contains(wd) {
            inotify_rm_watch(fileDescriptor, wd)
            watches[wd] = nil
        }
    }

    private func watch(_ directory: String, into live: inout Set<Int32>) {
        // A name made between the failed watch of it and the watch of its parent sends no
        // event: seen made by then, the walk starts again (a bounded number of times).
        for _ in 0..<16 {
            guard let missing = watchNearest(directory, into: &live), access(missing, F_OK) == 0 else { return }
        }
    }

    /// Watches `directory`, or the nearest directory above it that exists, for the next
    /// name on the way, and notes the watch in `live`; returns the path of that name (nil:
    /// `directory` itself is watched, or nothing could be).
    private func watchNearest(_ directory: String, into live: inout Set<Int32>) -> String? {
        var path = directory
        var next: String?
        while true {
            let mask = (next == nil ? Self.directoryMask : Self.ancestorMask) | UInt32(IN_MASK_ADD)
            let wd = inotify_add_watch(fileDescriptor, path, mask)
            if wd >= 0 {
                live.insert(wd)
                if let next {
                    // An ancestor also watched as a policy directory keeps counting everything.
                    if case .some(.some(var names)) = watches[wd] {
                        names.insert(next)
                        watches[wd] = .some(names)
                    } else if watches[wd] == nil {
                        watches[wd] = .some([next])
                    }
                } else {
                    watches[wd] = .some(nil)
                }
                return next.map { (path == "/" ? "" : path) + "/" + $0 }
            }
            guard errno == ENOENT || errno == ENOTDIR, path != "/" else { return nil }
            next = lastComponent(path)
            path = parentDirectory(path)
        }
    }
}
