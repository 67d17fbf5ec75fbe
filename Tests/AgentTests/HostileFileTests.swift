import Foundation
import Glibc
import HostInterface
@testable import AgentCommands
@testable import HotplugAgent
@testable import Simulation
import Logging
import Policy
import Testing

/// A corpus of hostile policy files: deep nesting of each kind, NUL bytes, invalid UTF-8,
/// files too large, too many values, control characters, option-like names, and text that
/// killed the C++ TOML parser the agent used before its own. `hotplug-agent check` must answer each with exit 0 or 1,
/// never a signal, in bounded time and memory (CPU time, so that other tests running
/// beside it do not count), and the spec's errors must name the file.
struct HostileFileTests {
    /// Name → contents, and what `check` must print first (nil: only that it names the file).
    static let corpus: [(name: String, bytes: [UInt8], first: String?)] = {
        func b(_ text: String) -> [UInt8] { Array(text.utf8) }
        func times(_ text: String, _ count: Int) -> String { String(repeating: text, count: count) }
        return [
            (
                "deep-arrays.toml", b("x = " + times("[", 20000) + times("]", 20000)),
                ":1: arrays or tables nested more than 32 deep (column 37)"
            ),
            (
                "deep-arrays-unclosed.toml", b("x = " + times("[", 500_000)),
                ":1: arrays or tables nested more than 32 deep (column 37)"
            ),
            (
                "deep-inline-tables.toml", b("x = " + times("{a=", 10000) + "1" + times("}", 10000)),
                ":1: arrays or tables nested more than 32 deep (column 101)"
            ),
            (
                "deep-mixed.toml", b("x = " + times("[{a=", 5000)),
                ":1: arrays or tables nested more than 32 deep (column 69)"
            ),
            (
                "deep-dotted-key.toml", b(times("a.", 5000) + "b = 1\n"),
                ":1: arrays or tables nested more than 32 deep (column 64)"
            ),
            (
                "deep-header.toml", b("[" + times("a.", 5000) + "b]\n"),
                ":1: arrays or tables nested more than 32 deep (column 65)"
            ),
            (
                "deep-array-of-tables.toml", b("[[" + times("a.", 5000) + "b]]\n"),
                ":1: arrays or tables nested more than 32 deep (column 66)"
            ),
            (
                "nul-in-string.toml", b("[[policy]]\nname = \"a") + [0] + b("b\"\n"),
                ":2: invalid TOML: a NUL byte (column 10)"
            ),
            ("nul-in-comment.toml", b("# a") + [0] + b("\n"), ":1: invalid TOML: a NUL byte (column 4)"),
            ("invalid-utf8.toml", b("name = \"") + [0xff] + b("\"\n"), ":1: invalid TOML: invalid UTF-8 (column 9)"),
            (
                "overlong-utf8.toml", b("name = \"") + [0xc0, 0x80] + b("\"\n"),
                ":1: invalid TOML: invalid UTF-8 (column 9)"
            ),
            (
                "surrogate-utf8.toml", b("name = \"") + [0xed, 0xa0, 0x80] + b("\"\n"),
                ":1: invalid TOML: invalid UTF-8 (column 9)"
            ),
            ("truncated-utf8.toml", b("name = \"") + [0xe2, 0x82], ":1: invalid TOML: invalid UTF-8 (column 9)"),
            (
                "huge.toml", b("# " + times("x", 2 << 20) + "\n"),
                ": the file is larger than 1 MiB (2097155 bytes); refused unread"
            ),
            (
                "many-values.toml", b("x = [" + times("1,", 520_000) + "1]\n"),
                ":1: more than 10000 values; a policy file needs far fewer (column 20004)"
            ),
            (
                "many-headers.toml", b(times("[[a]]\n", 170_000)),
                ":10001: more than 10000 values; a policy file needs far fewer (column 1)"
            ),
            ("many-policies.toml", b(times("[[policy]]\n", 9990)), ":1: name: required key is missing"),
            (
                "many-keys.toml", b((0..<9990).map { "k\($0) = 1\n" }.joined()),
                ":1: k0: unknown key (policies are [[policy]] tables)"
            ),
            (
                "long-string.toml",
                b("[[policy]]\nname = \"" + times("a", 1_000_000) + "\"\nmatch.ids = [\"1002:*\"]\n"), nil
            ),
            ("long-key.toml", b("\"" + times("k", 1_000_000) + "\" = 1\n"), nil),
            // Long names over many keys: what a parser keeps per key must not be the path
            // from the root (a 900 KB table name over 9,990 keys once took 8.6 GB).
            (
                "long-table-name.toml",
                b("[" + times("t", 900_000) + "]\n" + (0..<9990).map { "k\($0) = 1\n" }.joined()), nil
            ),
            (
                "long-policy-subtable.toml",
                b(
                    "[[policy]]\nname = \"p\"\n[policy.\"" + times("t", 900_000) + "\"]\n"
                        + (0..<9990).map { "k\($0) = 1\n" }.joined()),
                nil
            ),
            ("long-key-over-list.toml", b("\"" + times("k", 100_000) + "\" = [" + times("1,", 4095) + "1]\n"), nil),
            (
                "long-key-over-bad-ids.toml",
                b("[[policy]]\nname = \"p\"\nmatch.ids = [\n" + times("\"" + times("x", 90) + "\",\n", 9000) + "]\n"),
                ":4: match.ids: \"" + times("x", 90) + "\" is not vvvv:dddd"
            ),
            ("long-dotted-keys.toml", b((0..<9).map { "\"" + times("d", 100_000) + "\".k\($0) = 1\n" }.joined()), nil),
            ("long-array-of-tables.toml", b(times("[[" + times("a", 100_000) + "]]\nk = 1\n", 9)), nil),
            (
                "escapes.toml", b((0..<9000).map { "k\($0) = \"" + times("\\u0041", 16) + "\"\n" }.joined()),
                ":1: k0: unknown key (policies are [[policy]] tables)"
            ),
            // An error at the end of a file that ends with a newline is on its last line.
            (
                "unclosed-at-end.toml", b("[[policy]]\nname=\"p\"\nmatch.ids=[\"1002:74a1\"]\nsysfs=[\n"),
                ":4: invalid TOML: expected a value (column 8)"
            ),
            ("unclosed-at-end-crlf.toml", b("a = [\r\n1,\r\n"), ":2: invalid TOML: expected a value (column 3)"),
            ("killed-toml++.toml", b("x = [ } ]\n"), ":1: invalid TOML: expected a value, found '}' (column 7)"),
            ("nameless-header.toml", b("x = 1\n[\n"), ":2: invalid TOML: expected a table name after '[' (column 2)"),
            (
                "control-name.toml", b("[[policy]]\nname = \"evil\\u001b[31m\"\nmatch.ids = [\"1002:74a1\"]\n"),
                ":2: name: \"evil\\u001b[31m\" holds a control character"
            ),
            (
                "newline-name.toml", b("[[policy]]\nname = \"a\\nb\"\nmatch.ids = [\"1002:74a1\"]\n"),
                ":2: name: \"a\\nb\" holds a control character"
            ),
            (
                "option-driver.toml", b("[[policy]]\nname = \"p\"\nmatch.ids = [\"1002:74a1\"]\ndriver = \"-r\"\n"),
                ":4: driver: \"-r\" is not a driver name"
            ),
            (
                "shell-name.toml", b("[[policy]]\nname = \"p; rm -rf /\"\nmatch.ids = [\"1002:74a1\"]\n"),
                ":2: name: \"p; rm -rf /\" is not a policy name: 1 to 64 of A-Z a-z 0-9 . _ -"
            ),
            (
                "option-match-driver.toml", b("[[policy]]\nname = \"p\"\nmatch.driver = [\"--force\"]\n"),
                ":3: match.driver: \"--force\" is not a driver name"
            ),
            (
                "control-in-value.toml",
                b("[[policy]]\nname = \"p\"\nmatch.ids = [\"1002:74a1\"]\nsysfs = [\"power/control=on\\u0007\"]\n"),
                ":4: sysfs: \"power/control=on\\u0007\" holds a control character"
            ),
            (
                "escape-in-key.toml", b("\"a\\u001b[2J\" = 1\n"),
                ":1: a\\x1b[2J: unknown key (policies are [[policy]] tables)"
            ),
            (
                "world-writable-mode.toml",
                b("[[policy]]\nname = \"p\"\nmatch.ids = [\"1002:74a1\"]\nmode = \"0666\"\n"),
                ":4: mode: \"0666\" lets others write to the device node"
            ),
            (
                "setuid-mode.toml", b("[[policy]]\nname = \"p\"\nmatch.ids = [\"1002:74a1\"]\nmode = \"4660\"\n"),
                ":4: mode: \"4660\" sets a setuid, setgid or sticky bit; a device node takes none"
            )
        ]
    }()

    struct Measured {
        var exitStatus: Int32?
        var signal: Int32?
        var cpu: Duration
        var wall: Duration
        var maxRSSKiB: Int
        var stdout: String
    }

    /// Runs the binary under GNU time, which forks it from its own small process: a child
    /// spawned straight from this test process would count the test's memory as its own
    /// (the high-water mark survives vfork and exec).
    static func measure(_ arguments: [String], in directory: String) throws -> Measured {
        let report = directory + "/time.txt"
        let started = ContinuousClock.now
        let result = try Binary.run(
            ["-f", "%M %U %S %x", "-o", report, Binary.path] + arguments, executable: "/usr/bin/time")
        let wall = ContinuousClock.now - started
        let lines = try String(contentsOfFile: report, encoding: .utf8).split(separator: "\n")
        let fields = try #require(lines.last).split(separator: " ")
        let signal = lines.first { $0.hasPrefix("Command terminated by signal ") }.flatMap {
            Int32($0.split(separator: " ").last!)
        }
        let cpu = Duration.milliseconds(Int((Double(fields[1])! + Double(fields[2])!) * 1000))
        return Measured(
            exitStatus: signal == nil ? Int32(fields[3]) : nil, signal: signal, cpu: cpu, wall: wall,
            maxRSSKiB: Int(fields[0])!, stdout: result.stdout)
    }

    @Test(.serialized, arguments: corpus.map(\.name))
    func checkAnswersEveryHostileFileInBoundedTimeAndMemory(name: String) throws {
        let entry = try #require(Self.corpus.first { $0.name == name })
        let tree = try FakeSysfs()
        let file = tree.path("/\(name)")
        try Data(entry.bytes).write(to: URL(fileURLWithPath: file))
        let result = try Self.measure(["check", "--root", tree.root, file], in: tree.root)
        #expect(result.signal == nil, "killed by signal \(result.signal ?? 0)")
        #expect(result.exitStatus == 1, "\(result.stdout.prefix(300))")
        #expect(result.cpu < .seconds(2), "\(result.cpu) of CPU")
        #expect(result.wall < .seconds(10), "\(result.wall)")
        #expect(result.maxRSSKiB < 64 * 1024, "\(result.maxRSSKiB) KiB")
        #expect(result.maxRSSKiB > 1024, "the measurement itself is off")
        #expect(result.stdout.hasPrefix(file), "\(result.stdout.prefix(300))")
        if let first = entry.first {
            let line = String(result.stdout.prefix { $0 != "\n" })
            #expect(line == file + first)
        }
        // One line per error: nothing a file holds splits a line or reaches the terminal.
        #expect(!result.stdout.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || $0.value == 0x7f })
        #expect(result.stdout.split(separator: "\n").allSatisfy { $0.hasPrefix(file) })
    }
}

/// Names and values from files and the kernel never split or dress up a printed line.
struct EscapingTests {
    @Test func aLogLineStaysOneLineWhateverItsParts() {
        let lines = LogLines()
        let log = Logger.lines(level: .info) { lines.append($0) }
        log.error(
            "failed: driver \("evil\nerror: 0000:00:00.0 forged\u{1b}[2J")",
            metadata: ["device": "0000:0b:00.0", "policy": "p\u{7}"])
        #expect(lines.all == ["error: 0000:0b:00.0 [p\\x07] failed: driver evil\\nerror: 0000:00:00.0 forged\\x1b[2J"])
    }

    @Test func lineSeparatorsAndBidiOverridesAreEscapedToo() {
        #expect(escapingControlCharacters("a\u{2028}b\u{2029}c\u{202E}d") == "a\\u{2028}b\\u{2029}c\\u{202e}d")
        #expect(escapingControlCharacters("carte \u{e9}\u{1F600}") == "carte \u{e9}\u{1F600}")
    }

    @Test func planLinesEscapeWhatSysfsShows() {
        var device = PCIDevice(
            address: PCIAddress("0000:0b:00.0")!, id: PCIID("1002:74a1")!, classCode: 0x030000, driver: "drv\r\nx")
        device.iommuGroup = 3
        let plan = DevicePlan(device: device)
        #expect(renderPlans([plan]) == ["0000:0b:00.0 [1002:74a1] class 030000, driver drv\\r\\nx: no policy"])
    }
}
