import Foundation
import Glibc
import HostInterface
@testable import HotplugAgent
import Testing

/// Files root writes (metrics, status and origin records) in a directory another user
/// owns, as Debian's node exporter directory is the `prometheus` user's: whatever that
/// user plants, root never writes through a link, never truncates or chmods a file it did
/// not just create, and the file ends with exactly its mode.
struct SafeWriterTests {
    @Test(.enabled(if: runningAsRoot, "chown needs root"))
    func linksPlantedByTheDirectorysOwnerAreNeverFollowed() throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/var/lib/prometheus/node-exporter")
        chown(tree.path("/var/lib/prometheus"), 1000, 1000)
        chown(tree.path("/var/lib/prometheus/node-exporter"), 1000, 1000)
        try tree.file("/shadow", "root:secret\n")
        chmod(tree.path("/shadow"), 0o600)
        // Under the old temporary name, every name a guess could hit, and the file's own.
        for planted in [".hotplug_agent.prom.tmp", "hotplug_agent.prom"] {
            try tree.link("/var/lib/prometheus/node-exporter/\(planted)", to: tree.path("/shadow"))
        }
        let metrics = tree.path("/var/lib/prometheus/node-exporter/hotplug_agent.prom")
        try writeFileAtomically(metrics, "hotplug_agent_devices 1\n", fileMode: 0o644, durable: false)
        #expect(try tree.read("/shadow") == "root:secret\n")
        #expect(tree.stat("/shadow").st_mode & 0o7777 == 0o600)
        // The link at the file's name was replaced, not followed.
        #expect(tree.stat("/var/lib/prometheus/node-exporter/hotplug_agent.prom").st_mode & S_IFMT == S_IFREG)
        #expect(try tree.read("/var/lib/prometheus/node-exporter/hotplug_agent.prom") == "hotplug_agent_devices 1\n")
        #expect(tree.stat("/var/lib/prometheus/node-exporter/hotplug_agent.prom").st_mode & 0o7777 == 0o644)
        // No temporary file is left behind.
        let names = try FileManager.default.contentsOfDirectory(atPath: tree.path("/var/lib/prometheus/node-exporter"))
        #expect(names.sorted() == [".hotplug_agent.prom.tmp", "hotplug_agent.prom"])
    }

    /// The directory's owner swaps the directory, or one above the state directory, for a
    /// link of theirs: never followed, and nothing is made through it.
    @Test(
        .enabled(if: runningAsRoot, "lchown needs root"),
        arguments: [
            "/var/lib/prometheus/node-exporter/hotplug_agent.prom",
            "/var/lib/prometheus/node-exporter/new/state/0000:0b:00.0"
        ])
    func aLinkAnotherUserPlantedOnTheWayIsRefusedNotFollowed(file: String) throws {
        let tree = try FakeSysfs()
        try tree.mkdir("/elsewhere")
        try tree.mkdir("/var/lib/prometheus")
        chown(tree.path("/var/lib/prometheus"), 1000, 1000)
        try tree.link("/var/lib/prometheus/node-exporter", to: tree.path("/elsewhere"))
        lchown(tree.path("/var/lib/prometheus/node-exporter"), 1000, 1000)
        #expect(throws: IOFailure.self) { try writeFileAtomically(tree.path(file), "x\n", durable: false) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: tree.path("/elsewhere")).isEmpty)
        // Root's own link (an admin's) is followed.
        lchown(tree.path("/var/lib/prometheus/node-exporter"), 0, 0)
        try writeFileAtomically(tree.path(file), "x\n", durable: false)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tree.path("/elsewhere")).count == 1)
    }

    @Test func missingDirectoriesAreMadeWithExactlyTheirModeWhateverTheUmask() throws {
        let tree = try FakeSysfs()
        let old = umask(0o077)
        umask(old)  // read it back: only what this test makes is checked, with the mode asked
        try writeFileAtomically(
            tree.path("/run/hotplug-agent/status/0000:0b:00.0"), "x\n", fileMode: 0o644,
            directoryMode: 0o751, durable: false)
        #expect(tree.stat("/run/hotplug-agent").st_mode & 0o7777 == 0o751)
        #expect(tree.stat("/run/hotplug-agent/status").st_mode & 0o7777 == 0o751)
    }

    /// The umask (the test's 022, the unit's 077) takes nothing away: group write survives.
    @Test func theFileGetsExactlyItsModeWhateverTheUmask() throws {
        let tree = try FakeSysfs()
        let file = "/run/hotplug-agent/status/0000:0b:00.0"
        try writeFileAtomically(tree.path(file), "settled\n", fileMode: 0o664, directoryMode: 0o755, durable: true)
        #expect(tree.stat(file).st_mode & 0o7777 == 0o664)
        try writeFileAtomically(tree.path(file), "waiting\n", fileMode: 0o600)
        #expect(tree.stat(file).st_mode & 0o7777 == 0o600)
        #expect(try tree.read(file) == "waiting\n")
    }
}
