import HostInterface
import Glibc

/// The one way the agent, as root, writes a file (status records, the reload record,
/// metrics, CDI specs, boot configuration; the records of where devices came from are
/// links, `writeRecordAtomically` below): safe in a directory another user owns (the node
/// exporter's, which Debian makes the `prometheus` user's), and whole after a crash.
///
/// - The directory is opened once, through `TrustedPath.openDirectoryForWriting` (no link
///   another user planted on the way is followed, missing directories are made with
///   exactly `directoryMode`), and everything else happens relative to that descriptor.
/// - The contents go to a new file with a random name, created `O_CREAT|O_EXCL|O_NOFOLLOW`:
///   a file or link planted under any name is never opened, truncated or chmod'ed.
/// - It gets exactly `fileMode` (`fchmod` on that descriptor, whatever the umask), then is
///   renamed over the file's name, which replaces a link planted there instead of
///   following it. A failure removes the temporary file.
/// - With `durable`, the file and the directory are synced: after a power loss it is the
///   old file or the new one. Without, the rename alone is atomic for every process, for
///   state that does not outlive a boot.
///
/// `root`: the `--root` the path lies below (its links resolve inside it), or `/`.
/// `readBack`: for a record root acts on when it reads it again (see `openDirectoryForWriting`).
package func writeFileAtomically(
    _ path: String, _ text: String, fileMode: mode_t = 0o644, directoryMode: mode_t = 0o755,
    durable: Bool = true, root: String = "/", readBack: TrustedPath.Owners? = nil
) throws(IOFailure) {
    // The last `/` byte: found as a character, a name beginning with a combining mark would
    // join it, and the directory before it would be taken into the name.
    let slash = path.utf8.lastIndex(of: UInt8(ascii: "/"))!
    let directoryPath = slash == path.startIndex ? "/" : String(path[..<slash])
    let name = String(path[path.utf8.index(after: slash)...])
    let directory = try openDirectoryForWriting(directoryPath, mode: directoryMode, root: root, readBack: readBack)
    defer { close(directory) }
    try writeFileAtomically(
        name, in: directory, shown: directoryPath, text, fileMode: fileMode, durable: durable)
}

/// The directory `writeFileAtomically` writes into, opened as it opens it; for a caller
/// that writes there often and keeps the descriptor.
///
/// With `readBack`, it holds records root acts on when it reads them again (where devices
/// came from, the ACL entries the agent added, status, the reload): reaching the directory
/// to write judges only the directory itself, so it is reached a second time as such records
/// are read (every directory on the way judged, trusting `readBack`'s owners) and must be
/// the same one. Below another user's directory a record would be written and never
/// believed, and what the agent did on it could never be undone: it is refused instead.
package func openDirectoryForWriting(
    _ path: String, mode: mode_t, root: String = "/", readBack: TrustedPath.Owners? = nil
) throws(IOFailure) -> Int32 {
    let fd: Int32
    switch TrustedPath.openDirectoryForWriting(path, creating: mode, root: root) {
    case .success(let opened): fd = opened
    case .failure(let refusal):
        throw IOFailure(.open, path, errno: refusal.isMissing ? .ENOENT : .EPERM, detail: refusal.message)
    }
    guard let readBack else { return fd }
    switch TrustedPath.directory(path, root: root, goal: .listDirectory, owners: readBack) {
    case .failure(let refusal):
        close(fd)
        throw IOFailure(
            .open, path, errno: .EPERM, detail: "\(refusal.message): a record there would not be believed when read")
    case .success(let judged):
        defer { close(judged) }
        var written = stat(), read = stat()
        guard fstat(fd, &written) == 0, fstat(judged, &read) == 0, written.st_dev == read.st_dev,
            written.st_ino == read.st_ino
        else {
            close(fd)
            throw IOFailure(.open, path, errno: .EAGAIN, detail: "it was replaced while it was opened")
        }
        return fd
    }
}

/// `name` written atomically into the directory open as `directory` (from
/// `openDirectoryForWriting`; `shown` is its path, for errors), as above.
package func writeFileAtomically(
    _ name: String, in directory: Int32, shown directoryPath: String, _ text: String, fileMode: mode_t,
    durable: Bool
) throws(IOFailure) {
    let path = directoryPath + "/" + name
    var temporary = ""
    var fd: Int32 = -1
    for _ in 0..<16 {
        temporary = ".\(name).\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        fd = openat(directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, fileMode)
        if fd >= 0 || errno != EEXIST { break }
    }
    guard fd >= 0 else { throw IOFailure(.write, directoryPath + "/" + temporary, value: text, errno: .current) }
    func fail(_ error: Errno, _ failedPath: String) -> IOFailure {
        close(fd)
        unlinkat(directory, temporary, 0)
        return IOFailure(.write, failedPath, value: text, errno: error)
    }
    // Exactly `fileMode`, whatever the umask (the unit's is 0077; metrics must stay readable).
    guard fchmod(fd, fileMode) == 0 else { throw fail(.current, directoryPath + "/" + temporary) }
    var text = text
    var offset = 0
    let total = text.utf8.count
    while offset < total {
        let written = text.withUTF8 { write(fd, $0.baseAddress! + offset, total - offset) }
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { throw fail(written < 0 ? .current : .EIO, directoryPath + "/" + temporary) }
        offset += written
    }
    if durable && fsync(fd) != 0 { throw fail(.current, directoryPath + "/" + temporary) }
    close(fd)
    fd = -1
    guard renameat(directory, temporary, directory, name) == 0 else {
        let error = Errno.current
        unlinkat(directory, temporary, 0)
        throw IOFailure(.write, path, value: text, errno: error)
    }
    if durable { fsync(directory) }
}

/// A small record of the agent's own (where a device came from) written atomically into
/// the directory open as `directory`: kept as the target of a link named `name`, as systemd
/// keeps a unit's invocation ID, read back by `TrustedPath.readRecord`. Where there is none
/// yet, making the link is the whole write (one `symlinkat`, which never follows or
/// replaces whatever the name holds); otherwise a link with a random name is made and
/// renamed over it, as above. A link has no contents to write or mode to set, and a
/// reader never follows it. `text` must be 1 to 4095 bytes with no NUL (what a link holds).
package func writeRecordAtomically(
    _ name: String, in directory: Int32, shown directoryPath: String, _ text: String
) throws(IOFailure) {
    let path = directoryPath + "/" + name
    guard !text.isEmpty, text.utf8.count < Int(PATH_MAX), !text.utf8.contains(0) else {
        throw IOFailure(.write, path, value: text, errno: .EINVAL)
    }
    if symlinkat(text, directory, name) == 0 { return }
    guard errno == EEXIST else { throw IOFailure(.write, path, value: text, errno: .current) }
    var temporary = ""
    var made = false
    for _ in 0..<16 {
        temporary = ".\(name).\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        made = symlinkat(text, directory, temporary) == 0
        if made || errno != EEXIST { break }
    }
    guard made else { throw IOFailure(.write, directoryPath + "/" + temporary, value: text, errno: .current) }
    guard renameat(directory, temporary, directory, name) == 0 else {
        let error = Errno.current
        unlinkat(directory, temporary, 0)
        throw IOFailure(.write, path, value: text, errno: error)
    }
}
