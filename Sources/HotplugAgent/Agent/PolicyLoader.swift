import Glibc
import Logging
import Policy

/// Finds, checks and parses the policy files: the default directories under the root, or
/// the `--policy-dir`s given, plus any files named on the command line.
package struct PolicyLoader {
    let paths: HostPaths
    let accounts: any AccountResolver

    package init(paths: HostPaths, accounts: any AccountResolver) {
        self.paths = paths
        self.accounts = accounts
    }

    package func load(directories: [String]? = nil, files: [String] = []) -> (policies: PolicySet, errors: [PolicyError]) {
        var errors: [PolicyError] = []
        var listings: [(directory: String, names: [String])] = []
        for directory in directories ?? paths.policyDirectories {
            var st = stat()
            guard stat(directory, &st) == 0 else {
                // The default directories need not exist; one given by name must.
                if directories != nil { errors.append(PolicyError(file: directory, message: "cannot open: \(Errno.current)")) }
                continue
            }
            guard st.st_mode & S_IFMT == S_IFDIR else {
                errors.append(PolicyError(file: directory, message: "not a directory"))
                continue
            }
            if let problem = trustProblem(st, kind: "directory") {
                errors.append(PolicyError(file: directory, message: problem))
                continue
            }
            do {
                listings.append((directory, try RealKernelIO(paths: paths).list(directory)))
            } catch {
                errors.append(PolicyError(file: directory, message: "cannot list: \(error.errno)"))
            }
        }
        var parsed: [[Policy]] = []
        let parser = PolicyParser(accounts: accounts)
        for file in PolicySources.select(listings) + files {
            switch readPolicyFile(file) {
            case .masked:
                continue
            case .failed(let message):
                errors.append(PolicyError(file: file, message: message))
            case .bytes(let bytes):
                // The parser refuses size, NUL, UTF-8, nesting and value count before TOML.
                let result = parser.parse(bytes: bytes, file: file)
                errors += result.errors
                parsed.append(result.policies)
            }
        }
        let assembled = PolicySet.assemble(parsed)
        return (assembled.set, errors + assembled.errors)
    }

    /// For SIGHUP: the new policies, or nil (every error logged) to keep the running ones.
    func reload(directories: [String]?, log: Logger) -> PolicySet? {
        let (policies, errors) = load(directories: directories)
        for error in errors { log.error("\(error)") }
        guard errors.isEmpty else {
            log.error("reload refused: \(errors.count) error\(errors.count == 1 ? "" : "s"); the previous policies stay in force")
            return nil
        }
        log.notice("reloaded \(policies.policies.count) policies")
        return policies
    }

    private enum FileResult {
        case bytes([UInt8])
        /// A symlink to /dev/null masks a file of the same name in a later directory.
        case masked
        case failed(String)
    }

    /// Opens the file once and judges what that descriptor holds (a regular file owned by
    /// root, not writable by group or others, at most 1 MiB), then reads it through the same
    /// descriptor, so the file judged is the file read. Every directory above it is checked
    /// too (see `directoryProblem`).
    private func readPolicyFile(_ file: String) -> FileResult {
        var link = stat()
        if lstat(file, &link) == 0, link.st_mode & S_IFMT == S_IFLNK,
           (try? RealKernelIO(paths: paths).readLink(file)) == "/dev/null" {
            return .masked
        }
        // O_NONBLOCK: a FIFO planted in its place must not hang the agent in open().
        let fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        guard fd >= 0 else { return .failed("cannot open: \(Errno.current)") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failed("cannot stat: \(Errno.current)") }
        guard st.st_mode & S_IFMT == S_IFREG else { return .failed("not a regular file") }
        if let problem = trustProblem(st, kind: "file") { return .failed(problem) }
        if let problem = directoryProblem(above: file) { return .failed(problem) }
        if Int(st.st_size) > PolicyText.maxBytes {
            return .failed("the file is larger than 1 MiB (\(st.st_size) bytes); refused unread")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while bytes.count <= PolicyText.maxBytes {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if Errno.current == .EINTR { continue }
                return .failed("cannot read: \(Errno.current)")
            }
            if count == 0 { break }
            bytes += chunk[..<count]
        }
        // A file that grew since fstat is judged by what was read: over the limit, refused.
        return .bytes(bytes)
    }

    /// Like sshd's StrictModes: only root may be able to change what the agent does as root.
    private func trustProblem(_ st: stat, kind: String) -> String? {
        if st.st_uid != 0 { return "\(kind) is not owned by root (owner uid \(st.st_uid)); refused" }
        if st.st_mode & 0o022 != 0 {
            return "\(kind) is writable by group or others (mode \(octal(UInt16(st.st_mode & 0o7777)))); refused"
        }
        return nil
    }

    /// Every directory from the file's real parent up to `/` must be owned by root and not
    /// writable by group or others, unless its sticky bit is set (`/tmp`): whoever could
    /// rename entries in one of them could swap the policy file for theirs.
    private func directoryProblem(above file: String) -> String? {
        guard let resolved = realpath(file, nil) else { return "cannot resolve: \(Errno.current)" }
        var directory = String(cString: resolved)
        free(resolved)
        while directory != "/" {
            directory = parentDirectory(directory)
            var st = stat()
            guard stat(directory, &st) == 0 else { return "cannot stat \(directory): \(Errno.current)" }
            if st.st_uid != 0 {
                return "directory \(directory) above it is not owned by root (owner uid \(st.st_uid)); refused"
            }
            if st.st_mode & 0o022 != 0 && st.st_mode & S_ISVTX == 0 {
                return "directory \(directory) above it is writable by group or others (mode \(octal(UInt16(st.st_mode & 0o7777)))); refused"
            }
        }
        return nil
    }
}

/// `/a/b/c` → `/a/b`, `/a` → `/`.
func parentDirectory(_ path: String) -> String {
    guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), slash != path.utf8.startIndex else { return "/" }
    return String(path[..<slash])
}
