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

    /// The policies and every error; `masked`: the files a link to `/dev/null` masks (read
    /// as none, as systemd masks a unit).
    package func load(
        directories: [String]? = nil, files: [String] = []
    ) -> (policies: PolicySet, errors: [PolicyError], masked: [String]) {
        var errors: [PolicyError] = []
        var masked: [String] = []
        var listings: [(directory: String, names: [String])] = []
        for directory in directories ?? paths.policyDirectories {
            let directory = absolutePath(directory)
            switch TrustedPath.list(directory, root: paths.root) {
            case .success(let entries):
                listings.append((directory, entries.names))
                // A name that is not UTF-8 cannot be told apart from another once decoded.
                errors += entries.undecodable.filter { $0.hasSuffix(".toml") }.map {
                    PolicyError(file: directory + "/" + $0, message: "a file name that is not UTF-8; refused")
                }
            case .failure(let refusal):
                // The default directories need not exist; one given by name must.
                if directories == nil && refusal.isMissing { continue }
                errors.append(PolicyError(file: directory, message: refusal.message))
            }
        }
        var parsed: [[Policy]] = []
        let parser = PolicyParser(accounts: accounts)
        for file in PolicySources.select(listings) + files {
            // Every directory and link on the way judged, nothing but a regular file opened,
            // and read through the descriptor judged: the file judged is the file read.
            switch TrustedPath.read(absolutePath(file), limit: PolicyText.maxBytes, root: paths.root) {
            case .success(.masked):
                masked.append(file)
            case .failure(let refusal):
                errors.append(PolicyError(file: file, message: refusal.message))
            case .success(.bytes(let bytes)):
                // The parser refuses size, NUL, UTF-8, nesting and value count before TOML.
                let result = parser.parse(bytes: bytes, file: file)
                errors += result.errors
                parsed.append(result.policies)
            }
        }
        let assembled = PolicySet.assemble(parsed)
        return (assembled.set, errors + assembled.errors, masked)
    }

    /// For SIGHUP: the new policies, or nil (every error logged) to keep the running ones.
    package func reload(directories: [String]?, log: Logger) -> PolicySet? {
        let (policies, errors, _) = load(directories: directories)
        for error in errors { log.error("\(error)") }
        guard errors.isEmpty else {
            let count = "\(errors.count) error\(errors.count == 1 ? "" : "s")"
            log.error("reload refused: \(count); the previous policies stay in force")
            return nil
        }
        log.notice("reloaded \(policies.policies.count) policies")
        return policies
    }
}

/// `/a/b/c` → `/a/b`, `/a` → `/`.
package func parentDirectory(_ path: String) -> String {
    guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), slash != path.utf8.startIndex else { return "/" }
    return String(path[..<slash])
}
