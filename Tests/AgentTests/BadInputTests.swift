import Foundation
import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Policy
import Testing
import TestSupport

struct BadInputTests {
    /// Uevents with missing, malformed or hostile properties name a target only when they
    /// name a real address or group, and the agent survives every one of them.
    @Test func malformedUeventsAreIgnoredOrNameAValidTarget() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        #expect(host.runOnce())
        var random = SeededGenerator(seed: 11)
        var events: [UEvent] = []
        for _ in 0..<2000 {
            let garbage = random.text(from: "0123456789abcdef:./-vfioxyz\u{0}\n ", length: 0...20)
            var event = UEvent(
                action: random.pick(["add", "remove", "bind", "unbind", "change", "", garbage]),
                subsystem: random.pick(["pci", "vfio", "usb", ""]),
                devpath: random.pick(["", "/", "/devices/\(garbage)", "/devices/pci0000:00/0000:12:00.0"]),
                devname: random.pick([nil, "vfio/\(garbage)", "vfio/12", "vfio/-1", "vfio/vfio", garbage]))
            if Bool.random(using: &random) {
                event.properties["PCI_SLOT_NAME"] = random.pick([garbage, "0000:12:00.0", "0000:99:00.0"])
            }
            switch event.target {
            case .device(let address): #expect(PCIAddress(address.description) == address)
            case .group(let group): #expect(group >= 0)
            case nil: break
            }
            events.append(event)
        }
        let history = host.history
        host.agent.handle((events, false))
        #expect(host.history == history)
        #expect(host.agent.failureCount == 0)
    }

    /// Attribute files holding garbage, or a `uevent` whose IDs or class are garbage, are
    /// errors naming the file, never a crash or a guess.
    @Test func garbageInAttributeFilesIsReportedNotGuessed() throws {
        var random = SeededGenerator(seed: 5)
        for round in 0..<60 {
            let tree = try FakeSysfs()
            try tree.device("0000:0b:00.0", id: "1002:73bf", driver: "amdgpu", group: 20)
            let file = random.pick(["uevent", "uevent", "uevent", "driver_override", "boot_vga"])
            let garbage = random.text(from: "0x123456789abcdefgz\n\u{0}()null-=: ", length: 0...40)
            let path = "/sys/bus/pci/devices/0000:0b:00.0/\(file)"
            if file == "uevent" {
                let key = random.pick(["PCI_ID", "PCI_CLASS", "PCI_SUBSYS_ID", "PCI_SLOT_NAME", ""])
                let lines = FakeSysfs.uevent("0000:0b:00.0", id: "1002:73bf", class: "0x030000", driver: "amdgpu")
                    .split(separator: "\n").map {
                        $0.hasPrefix(key + "=") && !key.isEmpty ? key + "=" + garbage : String($0)
                    }
                try tree.file(path, key.isEmpty ? garbage : lines.joined(separator: "\n") + "\n")
            } else {
                try tree.file(path, garbage)
            }
            let paths = HostPaths(root: tree.root)
            let reader = SysfsReader(io: RealKernelIO(paths: paths), paths: paths)
            do {
                let device = try reader.device(PCIAddress("0000:0b:00.0")!)
                #expect(device.address == PCIAddress("0000:0b:00.0"), "round \(round)")
                #expect(device.id == PCIID("1002:73bf"), "round \(round)")
            } catch {
                guard case .malformed(let where_, _, _) = error else {
                    Issue.record("round \(round): \(file) = \(quoted(garbage)) gave \(error)")
                    continue
                }
                #expect(where_.hasSuffix("/\(file)"))
            }
        }
    }
}

/// `--json` output: what would break or reorder a terminal's line is escaped, and the
/// document still reads back as the same text.
struct JSONOutputTests {
    @Test func lineSeparatorsBidiAndC1ControlsAreEscapedInJSON() throws {
        let hostile = "a\u{2028}b\u{2029}c\u{202E}d\u{85}e\u{7F}f\u{2066}g\n"
        let text = prettyJSON(["driver": hostile])
        #expect(!text.unicodeScalars.contains { [0x2028, 0x2029, 0x202E, 0x85, 0x7F, 0x2066].contains($0.value) })
        #expect(
            text.contains("\\u2028") && text.contains("\\u202e") && text.contains("\\u0085") && text.contains("\\n"))
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(text.utf8))
        #expect(decoded["driver"] == hostile)
    }
}
