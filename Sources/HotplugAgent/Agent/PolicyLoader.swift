import HostInterface
import Glibc
import Logging
import Policy

/// Finds, checks and parses the policy files: the default directories under the root, or
/// the `--policy-dir`s given, plus any files named on the command line.
package struct PolicyLoader {
    package let paths: HostPaths
    package let accounts: any AccountResolver

    package init(paths: HostPaths, accounts: any AccountResolver) {
        self.paths = paths
        self.accounts = accounts
    }

    package func load(directories: [String]? = nil, files: [String] = []) -> (policies: PolicySet, errors: [PolicyError]) {
        var errors: [PolicyError] = []
        var listings: [(directory: String, names: [String])] = []
        for directory in directories ?? paths.policyDirectories {
            let directory = absolutePath(directory)
            switch TrustedPath.openDirectory(directory, root: paths.root) {
            case .success(let fd):
                let (names, unreadable) = Self.entries(fd)
                listings.append((directory, names))
                // A name that is not UTF-8 cannot be told apart from another once decoded.
                errors += unreadable.map { PolicyError(file: directory + "/" + $0, message: "a file name that is not UTF-8; refused") }
            case .failure(let refusal):
                // The default directories need not exist; one given by name must.
                if directories == nil && refusal.isMissing { continue }
                errors.append(PolicyError(file: directory, message: refusal.message))
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
    package func reload(directories: [String]?, log: Logger) -> PolicySet? {
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

    /// Opens the file through `TrustedPath` (every directory and link on the way judged,
    /// nothing but a regular file opened) and reads it through that descriptor, so the
    /// file judged is the file read.
    private func readPolicyFile(_ file: String) -> FileResult {
        let fd: Int32
        switch TrustedPath.openFile(absolutePath(file), root: paths.root) {
        case .failure(let refusal): return .failed(refusal.message)
        case .success(.masked): return .masked
        case .success(.file(let descriptor, let size)):
            fd = descriptor
            if size > PolicyText.maxBytes {
                close(fd)
                return .failed("the file is larger than 1 MiB (\(size) bytes); refused unread")
            }
        }
        defer { close(fd) }
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

    /// The names in the directory open as `fd` (closed here), and, shown escaped, the
    /// `*.toml` names that are not valid UTF-8.
    private static func entries(_ fd: Int32) -> (names: [String], unreadable: [String]) {
        guard let dir = fdopendir(fd) else {
            close(fd)
            return ([], [])
        }
        defer { closedir(dir) }
        var names: [String] = [], unreadable: [String] = []
        while let entry = readdir(dir) {
            let bytes = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            guard bytes != [UInt8(ascii: ".")], bytes != [UInt8(ascii: "."), UInt8(ascii: ".")] else { continue }
            if let name = String(validating: bytes, as: UTF8.self) {
                names.append(name)
            } else if bytes.count > 5, bytes.suffix(5).elementsEqual(".toml".utf8) {
                unreadable.append(bytes.map { $0 < 0x80 ? String(UnicodeScalar($0)) : "\\x" + hex(UInt32($0), width: 2) }.joined())
            }
        }
        return (names, unreadable)
    }
}

/// `/a/b/c` → `/a/b`, `/a` → `/`.
package func parentDirectory(_ path: String) -> String {
    guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), slash != path.utf8.startIndex else { return "/" }
    return String(path[..<slash])
}
