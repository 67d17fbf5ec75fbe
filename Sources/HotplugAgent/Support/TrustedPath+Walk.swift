import Glibc
import HostInterface
import Policy

/// Trusted: the walk from `/` (or `--root`) one component at a time, each link read and
/// followed here and each directory judged (see `TrustedPath`).
extension TrustedPath {
    static func directory(_ path: String, root: String, goal: Goal, owners: Owners = .root) -> Result<Int32, Refusal> {
        do {
            guard case .file(let fd, _) = try walk(path, root: root, goal: goal, owners: owners) else {
                return .failure(Refusal(message: "not a directory"))
            }
            return .success(fd)
        } catch {
            return .failure(error)
        }
    }

    static func walk(_ path: String, root: String, goal: Goal, owners: Owners = .root) throws(Refusal) -> Opened {
        guard path.isAbsolutePath, root.isAbsolutePath else { throw Refusal(message: "not an absolute path") }
        // The root is known by its identity, not by how it is spelled (`/a//t0`, `/a/t0/.`,
        // a link on the way to it): `..` never climbs above it. Below `/` it is reached as
        // any path is, each directory on the way judged (where the goal judges them), and
        // held: absolute links start again from this descriptor, never from the root opened
        // by its path, which anyone who may write a directory above it could make a link.
        // `/` itself is no link: opened by its path, as the walk's start is.
        let rootDirectory = root == "/" ? nil : try reachRoot(root, goal: goal, owners: owners)
        defer { if let rootDirectory { close(rootDirectory) } }
        let top = rootDirectory.map { identity(of: $0) } ?? identity(of: "/")
        var current = try openRoot(judged: goal.judgesDirectories)
        defer { close(current) }
        var shown = "/"
        // The user root handed a directory on the way to (`.rootOrHandedOver`), trusted below it.
        var handedTo: uid_t?
        var currentStat = status(of: current)
        // Components still to walk, last first; a link's target is pushed in front of them.
        var pending = components(path).reversed() as [Substring]
        var links = 0
        while let component = pending.popLast() {
            let isLast = pending.isEmpty
            if component == ".." {
                // Never above the root: `..` there is the root itself, as in a chroot.
                guard shown != "/", identity(of: current) != top else { continue }
                let parent = openat(current, "..", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard parent >= 0 else { throw Refusal(message: "cannot open \(shown)/..: \(Errno.current)") }
                close(current)
                current = parent
                shown = parentDirectory(shown)
                if goal.judgesDirectories {
                    try judge(current, isLast ? nil : shown, directory: true, handedTo: handedTo)
                }
                currentStat = status(of: current)
                // Above the directory handed over, its user is trusted no more.
                if currentStat?.st_uid != handedTo { handedTo = nil }
                continue
            }
            let name = String(component)
            let nextShown = (shown == "/" ? "" : shown) + "/" + name
            var next = openat(current, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)
            if next < 0, errno == ENOENT, case .writeInto(let mode) = goal {
                next = try makeDirectory(name, in: current, mode: mode, shown: nextShown)
            }
            guard next >= 0 else {
                let error = Errno.current
                throw Refusal.cannotOpen(
                    isLast ? "cannot open: \(error)" : "cannot open \(nextShown): \(error)", error, missing: true)
            }
            var st = stat()
            guard fstat(next, &st) == 0 else {
                close(next)
                throw Refusal(message: "cannot stat \(nextShown): \(Errno.current)")
            }
            switch st.st_mode & S_IFMT {
            case S_IFLNK:
                defer { close(next) }
                if isLast && goal == .readRecord {
                    // Not followed: its target is the record. Who may make one is judged as
                    // for a file's owner; a link's own mode means nothing.
                    guard st.st_uid == 0 || st.st_uid == geteuid() || st.st_uid == handedTo else {
                        throw Refusal(message: "record link is not owned by root (owner uid \(st.st_uid)); refused")
                    }
                    guard let target = readLinkBytes(next) else {
                        throw Refusal(message: "cannot read the link: \(Errno.current)")
                    }
                    return .record(target: target)
                }
                if st.st_uid != 0 && st.st_uid != geteuid() {
                    throw Refusal(
                        message:
                            "link \(nextShown) on the way is not owned by root (owner uid \(st.st_uid)); refused")
                }
                // A target in bytes that are not UTF-8 could only be followed by another name
                // (decoded, its bytes become U+FFFD): refused, as such a name in a listing is.
                let target: String?
                do throws(Errno) {
                    target = try readSymbolicLink("", in: next)
                } catch where error == .EILSEQ {
                    throw Refusal(message: "link \(nextShown) has a target that is not UTF-8; refused")
                } catch {
                    target = nil
                }
                if isLast && goal == .readFile, let target, AttributeWalker.normalized(target) == ["dev", "null"],
                    target.isAbsolutePath
                {
                    return .masked
                }
                links += 1
                guard links <= maxLinks, let target, !target.isEmpty else {
                    let error = links > maxLinks ? Errno.ELOOP : Errno.ENOENT
                    throw Refusal(message: "cannot resolve \(nextShown): \(error)")
                }
                if target.isAbsolutePath {
                    close(current)
                    handedTo = nil
                    if let rootDirectory {
                        current = dup(rootDirectory)
                        guard current >= 0 else { throw Refusal(message: "cannot open \(root): \(Errno.current)") }
                    } else {
                        current = try openRoot(judged: goal.judgesDirectories)
                    }
                    shown = root
                    currentStat = status(of: current)
                }
                pending += components(target).reversed()
            case S_IFDIR:
                // A directory reached is judged before anything in it is trusted. Root may have
                // handed it to a dynamic user of systemd's: below it, that user is trusted too.
                if case .rootOrHandedOver = owners, handedTo == nil, let parent = currentStat,
                    isHandingOver(parent), dynamicUsers.contains(st.st_uid)
                {
                    handedTo = st.st_uid
                }
                do {
                    if goal.judgesDirectories {
                        try judge(next, isLast ? nil : nextShown, directory: true, handedTo: handedTo)
                    }
                } catch {
                    close(next)
                    throw error
                }
                close(current)
                current = next
                shown = nextShown
                currentStat = st
            default:
                close(next)
                guard isLast else { throw Refusal(message: "cannot open \(nextShown): \(Errno.ENOTDIR)") }
                // /dev/null however it is reached masks a file, as systemd's units do.
                if goal == .readFile, st.st_mode & S_IFMT == S_IFCHR,
                    UInt64(st.st_rdev) == deviceNumber(major: 1, minor: 3)
                {
                    return .masked
                }
                guard st.st_mode & S_IFMT == S_IFREG, !goal.wantsDirectory else {
                    throw Refusal(message: goal.wantsDirectory ? "not a directory" : "not a regular file")
                }
                // A read-only mount excuses a directory, never the file's own mode: the same
                // file may be writable through another mount of it.
                try judge(st, readOnly: false, nil, directory: false, handedTo: handedTo)
                return .file(descriptor: try openJudged(name, in: current, like: st), size: Int(st.st_size))
            }
        }
        guard goal.wantsDirectory else { throw Refusal(message: "not a regular file") }
        let fd = openat(current, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            let error = Errno.current
            throw Refusal.cannotOpen("cannot open: \(error)", error)
        }
        return .file(descriptor: fd, size: 0)
    }

    /// Makes the directory `name` in `parent` with exactly `mode` (whatever the umask), and
    /// gives back an `O_PATH` descriptor of it: opened `O_NOFOLLOW|O_DIRECTORY`, so a link
    /// swapped in meanwhile is neither followed nor changed.
    private static func makeDirectory(
        _ name: String, in parent: Int32, mode: mode_t, shown: String
    ) throws(Refusal) -> Int32 {
        if mkdirat(parent, name, mode) != 0 && errno != EEXIST {
            throw Refusal(message: "cannot make \(shown): \(Errno.current)")
        }
        let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw Refusal(message: "cannot open \(shown): \(Errno.current)") }
        defer { close(fd) }
        guard fchmod(fd, mode) == 0 else { throw Refusal(message: "cannot chmod \(shown): \(Errno.current)") }
        return openat(fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC)
    }

    /// Opens for reading the file judged from `st` (O_NONBLOCK: nothing may hang the agent
    /// in open), and refuses it if the entry is no longer that file.
    private static func openJudged(_ name: String, in directory: Int32, like judged: stat) throws(Refusal) -> Int32 {
        let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else {
            let error = Errno.current
            throw Refusal.cannotOpen("cannot open: \(error)", error)
        }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_dev == judged.st_dev, st.st_ino == judged.st_ino else {
            close(fd)
            throw Refusal(message: "the file changed while it was opened; refused")
        }
        return fd
    }

    /// The directory absolute links start from below `--root`: the root walked to from `/`
    /// (each directory on the way judged when the goal judges directories, and only root's
    /// links followed, as for any path).
    private static func reachRoot(_ root: String, goal: Goal, owners: Owners) throws(Refusal) -> Int32 {
        let goal: Goal = goal.judgesDirectories ? .listDirectory : .reachDirectory
        guard case .file(let fd, _) = try walk(root, root: "/", goal: goal, owners: owners) else {
            throw Refusal(message: "the root \(root) is not a directory")
        }
        return fd
    }

    /// `/`, the directory every walk starts from.
    private static func openRoot(_ root: String = "/", judged: Bool) throws(Refusal) -> Int32 {
        let fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Refusal(message: "cannot open \(root): \(Errno.current)") }
        do {
            if judged { try judge(fd, root, directory: true, handedTo: nil) }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    private static func judge(_ fd: Int32, _ shown: String?, directory: Bool, handedTo: uid_t?) throws(Refusal) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Refusal(message: "cannot stat \(shown ?? "it"): \(Errno.current)") }
        try judge(st, readOnly: isReadOnly(fd), shown, directory: directory, handedTo: handedTo)
    }

    /// Owned by root (or the agent's own user, or the user root handed a directory on the
    /// way to), and writable by nobody else: not by group or others, unless a directory's
    /// sticky bit keeps them to their own entries or the mount is read-only. `shown` names a
    /// directory on the way; nil is the file or directory asked for.
    private static func judge(
        _ st: stat, readOnly: Bool, _ shown: String?, directory: Bool, handedTo: uid_t? = nil
    ) throws(Refusal) {
        let subject = shown.map { "directory \($0) above it" } ?? (directory ? "directory" : "file")
        if st.st_uid != 0 && st.st_uid != geteuid() && st.st_uid != handedTo {
            throw Refusal(message: "\(subject) is not owned by root (owner uid \(st.st_uid)); refused")
        }
        let sticky = directory && st.st_mode & S_ISVTX != 0
        if st.st_mode & 0o022 != 0 && !sticky && !readOnly {
            let mode = octal(UInt16(st.st_mode & 0o7777))
            throw Refusal(message: "\(subject) is writable by group or others (mode \(mode)); refused")
        }
    }

    /// Whether the mount `fd` lies on is read-only: nothing on it changes through it.
    private static func isReadOnly(_ fd: Int32) -> Bool {
        var vfs = statvfs()
        return fstatvfs(fd, &vfs) == 0 && vfs.f_flag & UInt(ST_RDONLY) != 0
    }

    /// The target of the link open as the `O_PATH` descriptor `fd`.
    private static func readLinkBytes(_ fd: Int32) -> [UInt8]? {
        try? withLinkTarget(fd, "") { Array($0) }
    }

    /// Split on the `/` byte, as the kernel splits paths: split as characters, a name that
    /// begins with a combining mark would join the `/` before it, and the directory before
    /// it would be opened in one `openat` with the name, never judged.
    private static func components(_ path: String) -> [Substring] {
        path.split(byte: UInt8(ascii: "/")).filter { $0 != "." }
    }

    /// A directory's device and inode; nil when it cannot be looked at.
    private static func identity(of fd: Int32) -> [UInt64]? {
        status(of: fd).map { [UInt64($0.st_dev), UInt64($0.st_ino)] }
    }

    private static func identity(of path: String) -> [UInt64]? {
        var st = stat()
        return stat(path, &st) == 0 ? [UInt64(st.st_dev), UInt64(st.st_ino)] : nil
    }

    /// What fstat says of an open file; nil when it cannot be told.
    private static func status(of fd: Int32) -> stat? {
        var st = stat()
        return fstat(fd, &st) == 0 ? st : nil
    }

    /// Whether a directory's entries are root's to hand over: owned by root, writable by
    /// root alone (not by group or others, and not sticky, where anyone may make one).
    private static func isHandingOver(_ parent: stat) -> Bool {
        parent.st_uid == 0 && parent.st_mode & (S_ISVTX | 0o022) == 0
    }
}
