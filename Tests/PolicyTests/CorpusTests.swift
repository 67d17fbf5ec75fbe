import Foundation
import Policy
import Testing

/// The policy corpus: every bad file must give exactly the errors in its `.expected` file,
/// every good file none. `UPDATE_GOLDEN=1 swift test` rewrites the expected files.
struct CorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Corpus")
    static let accounts = TestAccounts()

    static func files(_ kind: String) -> [String] {
        let names =
            (try? FileManager.default.contentsOfDirectory(atPath: corpus.appendingPathComponent(kind).path)) ?? []
        return names.filter { $0.hasSuffix(".toml") }.sorted()
    }

    static func errors(of relative: String) throws -> [String] {
        let text = try String(contentsOf: corpus.appendingPathComponent(relative), encoding: .utf8)
        let parsed = PolicyParser(accounts: accounts).parse(text, file: relative)
        let assembled = PolicySet.assemble([parsed.policies])
        return (parsed.errors + assembled.errors).map(\.description)
    }

    @Test(arguments: files("bad"))
    func badFileGivesExactlyItsExpectedErrors(name: String) throws {
        let got = try Self.errors(of: "bad/\(name)")
        let expectedURL = Self.corpus.appendingPathComponent("bad/\(name.dropLast(5)).expected")
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try (got.joined(separator: "\n") + "\n").write(to: expectedURL, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: expectedURL, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(!got.isEmpty)
        #expect(got == expected)
    }

    @Test(arguments: files("good"))
    func goodFileHasNoErrors(name: String) throws {
        #expect(try Self.errors(of: "good/\(name)") == [])
    }

    @Test func corpusIsThere() {
        #expect(Self.files("bad").count >= 15)
        #expect(Self.files("good").count >= 3)
    }
}

struct TestAccounts: AccountResolver {
    func userID(named name: String) -> UInt32? { ["root": 0, "cloud": 1000, "qemu": 107][name] }
    func groupID(named name: String) -> UInt32? { ["root": 0, "kvm": 993][name] }
}
