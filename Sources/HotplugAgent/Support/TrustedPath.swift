import HostInterface
import Glibc
import Policy

/// The agent's one path primitive, as systemd's `chase()` is systemd's, in two modes.
/// Confined (`openBeneath`): a path below a device's directory, never leaving it and never
/// following a link. Trusted (the rest): the one way the agent opens a file whose contents
/// it acts on as root (policies, the accounts they name, its own records of what to undo)
/// or a directory it lists or writes into, as `chase()` with `CHASE_SAFE` and sshd's
/// StrictModes.
///
/// The path is walked from `/` one component at a time with `O_PATH|O_NOFOLLOW`
/// descriptors; every symbolic link is read and followed here, not by the kernel, so every
/// directory the walk passes through is judged: the resolved path's directories and also
/// those holding each link. A directory must be owned by root (or by the agent's own user,
/// under systemd's `DynamicUser=` its runtime directory's owner) and not writable by group or
/// others, unless its sticky bit is set (`/tmp`) or it sits on a read-only mount, which
/// nobody can change through it (kubelet's ConfigMap volumes: an emptyDir root of mode 0777
/// mounted read-only). A link followed must be root's (in a sticky directory its owner may
/// swap it). The last component is judged from its `O_PATH` descriptor before anything is
/// opened for reading, so a device node or FIFO is refused without being opened; the file
/// then opened is checked to be the one judged.
package enum TrustedPath {
    /// Why a path is not to be trusted, worded for `FILE: message`.
    package struct Refusal: Error, Equatable {
        package let message: String
        /// The path, or a directory on the way, does not exist.
        package var isMissing = false
        /// This user may not open it or a directory on the way (EACCES, EPERM): not a
        /// judgement of the path.
        package var isDenied = false

        /// An open that failed with `error`: missing, denied, or neither.
        static func cannotOpen(_ message: String, _ error: Errno, missing: Bool = false) -> Refusal {
            Refusal(
                message: message, isMissing: missing && error == .ENOENT, isDenied: error == .EACCES || error == .EPERM)
        }
    }

    package enum Opened {
        /// A regular file, open for reading, and its size.
        case file(descriptor: Int32, size: Int)
        /// The last component is a link to `/dev/null`: a file masked, as systemd does it.
        case masked
        /// The last component is a link whose target is the record itself (`readRecord`).
        case record(target: [UInt8])
    }

    /// Links followed in one walk before it is refused, as the kernel's ELOOP limit.
    package static let maxLinks = 40

    /// Whom the walk trusts besides root (and the agent's own user).
    package enum Owners: Sendable {
        /// Root alone: policies, and what root acts on from them.
        case root
        /// Also a dynamic user of systemd's (`DynamicUser=`, uids 61184–65519) that root
        /// handed a directory to (its parent root's and not writable by others), below that
        /// directory: the daemon's runtime directory, whose records root's commands read. An
        /// ordinary user's directory stays refused: a mistaken chown must not let them plant
        /// what root acts on.
        case rootOrHandedOver
    }

    /// The uids systemd allocates for `DynamicUser=` (its DYNAMIC_UID_MIN and _MAX).
    package static let dynamicUsers: ClosedRange<uid_t> = 61184...65519

    /// What a walk is for: reading a file or listing a directory, both judged all the way;
    /// or writing into a directory, made (with exactly `mode`) where missing. `readRecord`
    /// reads a file too, but a link there is not followed: its target is the record.
    enum Goal: Equatable {
        case readFile, readRecord, listDirectory
        case writeInto(mode: mode_t)
        /// A directory that must be there, reached without judging (the root a write's
        /// absolute links resolve below: a write judges its own directory, not those above).
        case reachDirectory

        package var judgesDirectories: Bool {
            switch self {
            case .writeInto, .reachDirectory: false
            default: true
            }
        }
        package var wantsDirectory: Bool { self != .readFile && self != .readRecord }
    }

    /// Opens the regular file at the absolute `path` for reading. An absolute link target
    /// resolves below `root` (`--root`), as the kernel would inside it.
    package static func openFile(
        _ path: String, root: String = "/", owners: Owners = .root
    ) -> Result<Opened, Refusal> {
        do {
            return .success(try walk(path, root: root, goal: .readFile, owners: owners))
        } catch {
            return .failure(error)
        }
    }

    /// What `read` found: the file's bytes, or a link to `/dev/null` masking it.
    package enum Contents: Equatable {
        case bytes([UInt8])
        case masked
    }

    /// The whole regular file at the absolute `path`, read through the descriptor judged. A
    /// file over `limit` bytes is refused unread (and one that grows past it while read).
    package static func read(
        _ path: String, limit: Int = 1 << 20, root: String = "/", owners: Owners = .root
    ) -> Result<Contents, Refusal> {
        switch openFile(path, root: root, owners: owners) {
        case .failure(let refusal): return .failure(refusal)
        case .success(.masked): return .success(.masked)
        case .success(.record): return .failure(Refusal(message: "not a regular file"))
        case .success(.file(let fd, let size)): return contents(of: fd, size: size, limit: limit).map { .bytes($0) }
        }
    }

    /// One of the agent's own records at the absolute `path` (`writeRecordAtomically`): the
    /// target of the link there, never followed, if the link is trusted (root's, the agent's
    /// own user's or the user root handed its directory to); else the regular file there,
    /// read as `read` reads it (records older versions wrote as files).
    package static func readRecord(
        _ path: String, limit: Int = 4096, root: String = "/", owners: Owners = .root
    ) -> Result<[UInt8], Refusal> {
        do {
            switch try walk(path, root: root, goal: .readRecord, owners: owners) {
            case .record(let target): return .success(target)
            case .masked: return .failure(Refusal(message: "not a regular file"))
            case .file(let fd, let size): return contents(of: fd, size: size, limit: limit)
            }
        } catch {
            return .failure(error)
        }
    }

    /// The file open as `fd` (judged, `size` bytes then), which this closes; over `limit`
    /// bytes it is refused unread, or when it grows past it while read.
    private static func contents(of fd: Int32, size: Int, limit: Int) -> Result<[UInt8], Refusal> {
        defer { close(fd) }
        guard size <= limit else { return .failure(tooLarge(size, limit: limit)) }
        do {
            let bytes = try readAll(from: fd, limit: limit, chunk: min(limit + 1, 65536))
            return bytes.count > limit ? .failure(tooLarge(bytes.count, limit: limit)) : .success(bytes)
        } catch {
            return .failure(Refusal(message: "cannot read: \(error)"))
        }
    }

    private static func tooLarge(_ size: Int, limit: Int) -> Refusal {
        let most = limit % (1 << 20) == 0 ? "\(limit >> 20) MiB" : "\(limit) bytes"
        return Refusal(message: "the file is larger than \(most) (\(size) bytes); refused unread")
    }

    /// The file as text, or nil when it is missing, masked or not to be trusted.
    package static func text(
        _ path: String, limit: Int = 1 << 20, root: String = "/", owners: Owners = .root
    ) -> String? {
        guard case .success(.bytes(let bytes)) = read(path, limit: limit, root: root, owners: owners) else {
            return nil
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The entries of the directory at the absolute `path`, reached by the trusted walk.
    package static func list(
        _ path: String, root: String = "/", owners: Owners = .root
    ) -> Result<DirectoryEntries, Refusal> {
        switch directory(path, root: root, goal: .listDirectory, owners: owners) {
        case .failure(let refusal): return .failure(refusal)
        case .success(let fd):
            guard let entries = DirectoryEntries(closing: fd) else {
                return .failure(Refusal(message: "cannot list: \(Errno.current)"))
            }
            return .success(entries)
        }
    }

    /// Unlinks `names` in the directory at the absolute `path`, reached by the trusted walk:
    /// through its descriptor, so no link on the way (one swapped in after a listing
    /// included) leads the removal elsewhere. Returns the names now gone, unlinked or absent:
    /// all of them where the directory is missing, none where it is not to be trusted.
    package static func unlink(
        _ names: [String], in path: String, root: String = "/", owners: Owners = .root
    ) -> Set<String> {
        switch directory(path, root: root, goal: .listDirectory, owners: owners) {
        case .failure(let refusal): return refusal.isMissing ? Set(names) : []
        case .success(let fd):
            defer { close(fd) }
            return Set(names.filter { unlinkat(fd, $0, 0) == 0 || errno == ENOENT })
        }
    }

    /// Opens the directory at the absolute `path` for listing (`fdopendir`).
    package static func openDirectory(_ path: String, root: String = "/") -> Result<Int32, Refusal> {
        directory(path, root: root, goal: .listDirectory)
    }

    /// Opens the directory at the absolute `path` to write files into it (`writeFileAtomically`),
    /// making each missing directory with exactly `mode`. Directories on the way may be
    /// anyone's (the node exporter's is the `prometheus` user's), but a link is followed only
    /// if it is root's or the agent's: one another user planted, to lead root's writes
    /// elsewhere, is refused; and nothing is made through one. Below `root` (`--root`), an
    /// absolute link resolves inside it and `..` never climbs out, as for reading.
    package static func openDirectoryForWriting(
        _ path: String, creating mode: mode_t, root: String = "/"
    ) -> Result<Int32, Refusal> {
        directory(path, root: root, goal: .writeInto(mode: mode))
    }
}
