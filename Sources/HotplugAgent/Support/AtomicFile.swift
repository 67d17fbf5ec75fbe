import Glibc

/// Replaces a whole file so that after a crash at any point it is either the old file or
/// the new one: a hidden temporary file beside it, fsync, rename, fsync of the directory.
/// Without `durable` there is no fsync: the rename alone is atomic for every process, and
/// only a power loss could leave the old file, for state that does not outlive a boot.
/// The file gets exactly `fileMode`; missing directories are made with `directoryMode` (looked for only when the file cannot
/// be made); stray temporary files are harmless.
func writeFileAtomically(_ path: String, _ text: String, fileMode: mode_t = 0o644, directoryMode: mode_t = 0o755,
                         durable: Bool = true) throws(IOFailure) {
    let slash = path.lastIndex(of: "/")!
    let directory = String(path[..<slash])
    let temporary = directory + "/." + path[path.index(after: slash)...] + ".tmp"
    var fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, fileMode)
    if fd < 0 && errno == ENOENT {
        try makeDirectories(directory, mode: directoryMode)
        fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, fileMode)
    }
    guard fd >= 0 else { throw IOFailure(.write, temporary, value: text, errno: .current) }
    // Exactly `fileMode`, whatever the umask (the unit's is 0077; metrics must stay readable).
    guard fchmod(fd, fileMode) == 0 else {
        let error = Errno.current
        close(fd)
        throw IOFailure(.write, temporary, value: text, errno: error)
    }
    var text = text
    let written = text.withUTF8 { write(fd, $0.baseAddress, $0.count) }
    let synced = !durable || fsync(fd) == 0
    close(fd)
    guard written == text.utf8.count, synced else { throw IOFailure(.write, temporary, value: text, errno: .current) }
    guard rename(temporary, path) == 0 else { throw IOFailure(.write, path, value: text, errno: .current) }
    if durable { syncDirectory(directory.isEmpty ? "/" : directory) }
}

/// `mkdir -p`: each missing directory of the absolute `path`, made with `mode`.
package func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(IOFailure) {
    var prefix = ""
    for component in path.split(separator: "/") {
        prefix += "/" + component
        if mkdir(prefix, mode) != 0 && errno != EEXIST { throw IOFailure(.write, prefix, errno: .current) }
    }
}

/// Makes a rename or unlink in `directory` durable.
func syncDirectory(_ directory: String) {
    let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { return }
    fsync(fd)
    close(fd)
}
