import Glibc
import Policy

/// Parses policy text in a child process before the agent parses it in-process: TOMLKit's
/// C++ parser aborts (or, in release builds, runs into undefined behaviour) on some
/// malformed text, and a policy file must never take the daemon down with it.
struct TOMLIsolation: Sendable {
    enum Verdict: Equatable {
        /// The child parsed it or reported a parse error: safe to parse in-process.
        case parsed
        /// The child died by this signal (or could not run: 0).
        case killedTheParser(Int32)
        /// The child did not finish within the limit and was killed.
        case timedOut(Duration)
    }

    /// The program to run as `EXECUTABLE toml-check`: this very binary.
    var executable = "/proc/self/exe"

    /// How long the child may take. Text is bounded before it gets here (1 MiB, 32 deep),
    /// so this only stops a parser that misbehaves.
    var limit: Duration = .seconds(5)

    func check(_ bytes: [UInt8]) -> Verdict {
        guard let result = try? Subprocess.run(executable, arguments: ["toml-check"], input: bytes, timeout: limit)
        else { return .killedTheParser(0) }
        if result.timedOut { return .timedOut(limit) }
        return result.status == 0 || result.status == 1 ? .parsed : .killedTheParser(result.status > 128 ? result.status - 128 : result.status)
    }

    func check(_ text: String) -> Verdict { check(Array(text.utf8)) }
}
