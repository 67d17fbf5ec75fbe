import ArgumentParser
import Glibc
import Policy

/// Internal: parses standard input as TOML and exits 0 (valid) or 1 (a parse error). The
/// agent runs it in a child process so a parser crash cannot take the agent down.
struct TOMLCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "toml-check", shouldDisplay: false)

    func run() throws {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            bytes += chunk[..<count]
            if bytes.count > PolicyText.maxBytes { throw ExitCode(1) }
        }
        guard PolicyParser.refusal(bytes, file: "-") == nil else { throw ExitCode(1) }
        throw ExitCode(tomlSyntaxIsValid(String(decoding: bytes, as: UTF8.self)) ? 0 : 1)
    }
}
