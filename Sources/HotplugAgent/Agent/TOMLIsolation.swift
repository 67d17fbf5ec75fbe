import Glibc
import Policy

/// Parses policy text in a child process before the agent parses it in-process: TOMLKit's
/// C++ parser aborts (or, in release builds, runs into undefined behaviour) on some
/// malformed text, and a policy file must never take the daemon down with it.
struct TOMLIsolation: Sendable {
    enum Verdict: Equatable {
        /// The child parsed it or reported a parse error: safe to parse in-process.
        case parsed
        /// The child died (by this signal) or hung on it.
        case killedTheParser(Int32)
    }

    /// The program to run as `EXECUTABLE toml-check`: this very binary.
    var executable = "/proc/self/exe"

    func check(_ text: String) -> Verdict {
        guard let result = try? Subprocess.run(executable, arguments: ["toml-check"], input: Array(text.utf8), timeout: .seconds(5))
        else { return .killedTheParser(0) }
        return result.status == 0 || result.status == 1 ? .parsed : .killedTheParser(result.status > 128 ? result.status - 128 : result.status)
    }
}
