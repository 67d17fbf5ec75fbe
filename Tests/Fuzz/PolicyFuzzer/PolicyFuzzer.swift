import Glibc
import Policy

/// One input through everything of the policy layer that sees a file's raw bytes: the
/// limits (size, NUL, UTF-8, nesting, values, nameless headers), the TOML parser that
/// checks them as it reads and places every key on its line, the policy reader (every
/// error on a line of the file), the parsers of values (`sysfs`, `config`, IDs), and the
/// escaping every printed line goes through. Any crash, hang or broken invariant is a
/// finding; libFuzzer's -rss_limit_mb and -malloc_limit_mb make a blow-up of memory one.
func fuzzOne(_ bytes: [UInt8]) {
    let (policies, errors) = PolicyParser(accounts: NoAccounts()).parse(bytes: bytes, file: "fuzz.toml")
    precondition(policies.isEmpty || errors.isEmpty, "policies and errors from one file")
    if errors.isEmpty {
        precondition(bytes.count <= PolicyText.maxBytes && !bytes.contains(0), "accepted what the limits refuse")
        precondition(String(validating: bytes, as: UTF8.self) != nil, "accepted invalid UTF-8")
    }
    // Lines of the file: a last newline ends the last line, it does not start another.
    let lines = max(1, bytes.count { $0 == UInt8(ascii: "\n") } + (bytes.last == UInt8(ascii: "\n") ? 0 : 1))
    for error in errors {
        precondition(error.line.map { (1...lines).contains($0) } ?? true, "an error off the file's lines")
    }
    let text = String(decoding: bytes.prefix(65536), as: UTF8.self)
    for line in text.split(separator: "\n", omittingEmptySubsequences: false).prefix(64) {
        let line = String(line)
        if case .success(let write) = AttributeWrite.parse(line) {
            precondition(
                !write.components.contains("..") && !write.path.hasPrefix("/"), "a sysfs path leaves the device")
            precondition(SysfsRules.refusal(of: write.components) == nil, "a controlled attribute passed")
        }
        _ = ConfigWrite.parse(line)
        _ = PCIIDPattern(line)
        _ = PCIAddress(line)
        let escaped = escapingControlCharacters(line)
        precondition(
            !escaped.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) },
            "a control character printed")
        precondition(!quoted(line).unicodeScalars.contains { $0.value < 0x20 }, "a control character quoted")
    }
}

/// Names resolve to nothing; numbers are what the fuzzer reaches anyway.
struct NoAccounts: AccountResolver {
    func userID(named name: String) -> UInt32? { nil }
    func groupID(named name: String) -> UInt32? { nil }
}

#if FUZZING
    /// libFuzzer's driver, with our callback (SwiftPM's executables bring their own `main`).
    @_silgen_name("LLVMFuzzerRunDriver")
    func runFuzzerDriver(
        _ argc: UnsafeMutablePointer<Int32>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
    ) -> Int32

    @main
    struct Fuzzer {
        static func main() {
            var argc = CommandLine.argc
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
            let status = runFuzzerDriver(&argc, &argv) { data, size in
                fuzzOne(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
                return 0
            }
            exit(status)
        }
    }
#else
    /// Without libFuzzer: runs each file named on the command line once (the seed corpus).
    @main
    struct CorpusRunner {
        static func main() {
            for path in CommandLine.arguments.dropFirst() {
                guard let file = fopen(path, "rb") else { continue }
                var bytes: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 65536)
                while true {
                    let count = fread(&chunk, 1, chunk.count, file)
                    if count <= 0 { break }
                    bytes += chunk[..<count]
                }
                fclose(file)
                fuzzOne(bytes)
            }
            print("policy-fuzzer: \(CommandLine.arguments.count - 1) inputs ran")
        }
    }
#endif
