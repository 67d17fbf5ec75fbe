import Glibc
import Logging
import Policy

/// Finds, checks and parses the policy files: the default directories under the root, or
/// the `--policy-dir`s given, plus any files named on the command line.
struct PolicyLoader {
    let paths: HostPaths
    let accounts: any AccountResolver
    var isolation = TOMLIsolation()

    func load(directories: [String]? = nil, files: [String] = []) -> (policies: PolicySet, errors: [PolicyError]) {
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
            case .text(let text):
                if case .killedTheParser(let signal) = isolation.check(text) {
                    errors.append(PolicyError(file: file, message: "invalid TOML: the TOML parser failed on this file (signal \(signal)); check its syntax"))
                    continue
                }
                let result = parser.parse(text, file: file)
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
        case text(String)
        /// A symlink to /dev/null masks a file of the same name in a later directory.
        case masked
        case failed(String)
    }

    private func readPolicyFile(_ file: String) -> FileResult {
        var link = stat()
        if lstat(file, &link) == 0, link.st_mode & S_IFMT == S_IFLNK,
           (try? RealKernelIO(paths: paths).readLink(file)) == "/dev/null" {
            return .masked
        }
        var st = stat()
        guard stat(file, &st) == 0 else { return .failed("cannot open: \(Errno.current)") }
        guard st.st_mode & S_IFMT == S_IFREG else { return .failed("not a regular file") }
        if let problem = trustProblem(st, kind: "file") { return .failed(problem) }
        do {
            return .text(try readTextFile(file))
        } catch {
            return .failed("cannot read: \(error)")
        }
    }

    /// Like sshd's StrictModes: only root may be able to change what the agent does as root.
    private func trustProblem(_ st: stat, kind: String) -> String? {
        if st.st_uid != 0 { return "\(kind) is not owned by root (owner uid \(st.st_uid)); refused" }
        if st.st_mode & 0o022 != 0 {
            return "\(kind) is writable by group or others (mode \(octal(UInt16(st.st_mode & 0o7777)))); refused"
        }
        return nil
    }
}
