import Glibc
import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Policy
import Testing
import TestSupport

struct PolicyFuzzTests {
    static let fragments = [
        "[[policy]]\n", "[policy.match]\n", "[policy.sriov]\n", "name = \"p\"\n", "name = \"q\"\n", "name = 3\n",
        "match.ids = [\"1002:74a1\"]\n", "match.ids = [\"10x2:74a1\", 7]\n", "match.class = [\"03\"]\n",
        "match.slots = [\"0b:00.*\"]\n", "match.vf = true\n", "match.pf-ids = []\n", "driver = \"vfio-pci\"\n",
        "driver = \"../x\"\n", "claim-group = \"yes\"\n", "mode = \"0660\"\n", "mode = \"9\"\n", "owner = \"cloud\"\n",
        "owner = \"nobody-here\"\n", "group = 5\n", "sysfs = [\"reset_method=\", \"../x=1\"]\n",
        "config = [\"CAP_EXP+28.w=0040:0040\", \"80.q=1\"]\n", "sriov.num-vfs = 4\n", "sriov.num-vfs = -4\n",
        "atomic-ops = true\n", "x = 1\n", "policy = 3\n", "'''\n", "\"unterminated\n", "[\n", "= = =\n", "# comment\n",
        "ids = [\n  \"1002:74a1\",\n  \"zz\",\n]\n", "match = { ids = [\"1002:*\"], vf = false }\n",
        // Each of these aborted toml++ (an assertion on a value position), once the parser.
        "x = [ } ]\n", "sysfs = [ \"a=1\", } ]\n"
    ]

    /// Random documents built from pieces of real policy files, parsed in this process as
    /// the loader does: nothing takes the test (or the agent) down, every error names the
    /// file and either a line inside the document or a key path, and a document yields
    /// policies or errors, never both.
    @Test func theParserAnswersEveryDocumentWithPoliciesOrLocatedErrors() {
        var random = SeededGenerator(seed: 2026)
        let parser = PolicyParser(accounts: TableAccounts(users: ["cloud": 1000], groups: ["kvm": 993]))
        var refused = 0
        for _ in 0..<250 {
            var document = (0..<Int.random(in: 0...12, using: &random)).map { _ in random.pick(Self.fragments) }
                .joined()
            if Bool.random(using: &random) {
                document += random.text(from: "[]{}=\"',.#\n abc123:*", length: 0...20)
            }
            let lines = document.split(separator: "\n", omittingEmptySubsequences: false).count
            let (policies, errors) = parser.parse(document, file: "fuzz.toml")
            if errors.contains(where: { $0.message.hasPrefix("invalid TOML") }) { refused += 1 }
            #expect(policies.isEmpty || errors.isEmpty)
            for error in errors {
                #expect(error.file == "fuzz.toml")
                if let line = error.line {
                    #expect((1...max(1, lines)).contains(line), "\(error) in:\n\(document)")
                } else {
                    #expect(error.keyPath != nil, "\(error) in:\n\(document)")
                }
            }
            for policy in policies { #expect(!policy.match.isEmpty && !policy.name.isEmpty) }
        }
        // Many documents are not TOML at all; they got located errors like the rest.
        #expect(refused > 0)
    }

    @Test func aFileThatKilledTheCppParserIsAnErrorOnItsLine() throws {
        let tree = try FakeSysfs()
        try tree.file("/x.toml", "x = [ } ]\n")
        try tree.file("/y.toml", "x = 1\n[\n")
        let result = try Binary.run(["check", "--root", tree.root, tree.path("/x.toml"), tree.path("/y.toml")])
        #expect(result.status == 1)
        #expect(
            result.stdout == """
                \(tree.path("/x.toml")):1: invalid TOML: expected a value, found '}' (column 7)
                \(tree.path("/y.toml")):2: invalid TOML: expected a table name after '[' (column 2)

                """)
    }
}
