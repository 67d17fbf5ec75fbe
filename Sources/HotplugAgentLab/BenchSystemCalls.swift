import ArgumentParser
import Glibc
import HostInterface
import AgentCommands
import HotplugAgent
import Policy
import Simulation

/// System calls per claim on the real file layer: the bench runs itself again under
/// `strace -f`, the agent on a sysfs tree that a simulated kernel keeps level with its
/// writes (`MirroredKernelIO`), and counts the calls of each window, the mirror's own left
/// out. Futexes are left out (they are locks, not work).
extension BenchCommand {
    static var tracedFigure: String { "syscalls-traced" }

    func systemCallFigures(journal: Bool = false) throws {
        guard let strace = [String](["/usr/bin/strace", "/bin/strace"]).first(where: { access($0, X_OK) == 0 }) else {
            figure("system calls, a device arrives", "-", "strace is not installed (make deps)")
            return
        }
        let directory = try temporaryDirectory("hotplug-agent-strace")
        defer { _ = Subprocess.removeTree(directory) }
        let log = directory + "/trace"
        let lab = try readSymbolicLink("/proc/self/exe")
        let result = try Subprocess.run(
            strace,
            arguments: [
                "-f", "-qq", "-s", "256", "-e", "trace=!futex", "-o", log, lab, "bench", "--only", Self.tracedFigure
            ],
            timeout: .seconds(600))
        guard result.status == 0 else { throw ValidationError("the traced bench failed: \(result.output)") }
        let trace = try SystemCallTrace(file: log)
        func line(_ window: String) -> String {
            let calls = trace.calls[window, default: [:]]
            return calls.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.value) \($0.key)" }
                .joined(separator: ", ")
        }
        func total(_ window: String) -> Int { trace.calls[window, default: [:]].values.reduce(0, +) }
        for (window, what) in [("gpu", "a GPU arrives, unbound"), ("nic", "a NIC arrives, on its driver")] {
            figure(
                "system calls, \(what)", "\(total(window))",
                "\(trace.notes[window] ?? ""); \(line(window)); goal <= 30")
        }
        figure("system calls, event, settled", "\(total("settled"))", line("settled"))
        let perClaim = Double(total("coldplug") - total("again")) / 16
        figure(
            "system calls per claim, coldplug", fixed(perClaim, 0),
            "seed 000, 16 claimed: \(total("coldplug")) in all, less \(total("again")) for the same run with "
                + "nothing to do")
        if journal {
            for window in ["gpu", "nic", "settled"] {
                output("\(window), by call and path:")
                for (pair, count) in trace.pairs[window, default: [:]].sorted(by: { $0.value > $1.value }).prefix(40) {
                    output("  " + String(count).leftPadded(toLength: 4) + " " + pair)
                }
            }
        }
    }

    /// Run under strace by `systemCallFigures`: seed 000 on a mirrored tree, coldplugged,
    /// coldplugged again with nothing to do, then a GPU and a NIC unplugged and plugged again
    /// into the warmed agent, and an event for a settled device; each in its window.
    func tracedClaims() throws {
        let (description, kernel, targets) = try Self.seed000Host(probe: .zero)
        let root = try temporaryDirectory("hotplug-agent-tree")
        let state = try temporaryDirectory("hotplug-agent-state")
        defer { _ = Subprocess.removeTree(root); _ = Subprocess.removeTree(state) }
        let io = try MirroredKernelIO(root: root, kernel: kernel)
        let agent = Agent.assemble(
            kernel: io, paths: io.paths, policies: Self.policies(Self.seed000Policy), dryRun: false, log: Self.quiet,
            bindSettle: .zero, stateDirectory: state, workers: 1)
        func claimed() -> Int {
            kernel.inspect { state in targets.filter { state.devices[$0]?.driver == "vfio-pci" } }.count
        }
        SystemCallTrace.window("coldplug")
        _ = agent.runOnce(events: kernel)
        SystemCallTrace.window(nil)
        guard claimed() == targets.count else { throw ValidationError("coldplug claimed \(claimed()) of 16") }
        SystemCallTrace.window("again")
        _ = agent.runOnce(events: kernel)
        SystemCallTrace.window(nil)
        for (window, address) in [("gpu", "0000:12:00.0"), ("nic", "0000:13:00.0")] {
            let address = PCIAddress(address)!
            kernel.unplug(address)
            try io.level()
            agent.handle(kernel.drain())
            SystemCallTrace.window(window)
            KernelMarker.begin()
            try kernel.plug(description.devices.first { $0.address == address.description }!)
            KernelMarker.end()
            try io.level()
            let count = handleUntilQuiet(agent, kernel)
            SystemCallTrace.window(nil)
            guard claimed() == targets.count else { throw ValidationError("\(address) was not claimed again") }
            SystemCallTrace.note(window, "\(count) events handed in")
        }
        let change = UEvent(
            action: "change", subsystem: "pci", devpath: "/devices/0000:12:00.0",
            properties: ["PCI_SLOT_NAME": "0000:12:00.0"])
        SystemCallTrace.window("settled")
        agent.handle(([change], false))
        SystemCallTrace.window(nil)
    }
}

/// An `strace -f -o` log read by window: calls by name, and by name and first path.
struct SystemCallTrace {
    private static let prefix = "hotplug-agent-bench: "
    var calls: [String: [String: Int]] = [:]
    var pairs: [String: [String: Int]] = [:]
    var notes: [String: String] = [:]

    /// The following calls count for `name` (nil: for none), in every thread.
    static func window(_ name: String?) { KernelMarker.mark(prefix + "window " + (name ?? "")) }
    /// A note for a window, carried through the trace.
    static func note(_ window: String, _ text: String) { KernelMarker.mark(prefix + "note " + window + " " + text) }

    init(file: String) throws {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ValidationError("\(file): \(Errno.current)") }
        defer { close(fd) }
        let text = String(decoding: try readAll(from: fd), as: UTF8.self)
        var window: String?
        var inKernel = Set<Substring>()
        for line in text.split(separator: "\n") {
            guard let space = line.firstIndex(of: " ") else { continue }
            let thread = line[..<space], call = line[space...].drop { $0 == " " }
            if call.hasPrefix("<...") || call.hasPrefix("+++") || call.hasPrefix("---") { continue }
            if call.hasPrefix("write(-1, \"" + Self.prefix) {
                let marker = call.dropFirst("write(-1, \"".count + Self.prefix.count).prefix { $0 != "\"" }
                if marker == "kernel <" {
                    inKernel.insert(thread)
                } else if marker == "kernel >" {
                    inKernel.remove(thread)
                } else if marker.hasPrefix("window ") {
                    let name = marker.dropFirst("window ".count)
                    window = name.isEmpty ? nil : String(name)
                } else if marker.hasPrefix("note ") {
                    let words = marker.dropFirst("note ".count)
                    let name = words.prefix { $0 != " " }
                    notes[String(name)] = String(words.dropFirst(name.count + 1))
                }
                continue
            }
            guard let window, !inKernel.contains(thread), let open = call.firstIndex(of: "(") else { continue }
            let name = String(call[..<open])
            calls[window, default: [:]][name, default: 0] += 1
            let quoted = call[open...].split(separator: "\"", maxSplits: 2, omittingEmptySubsequences: false)
            let path = quoted.count > 2 ? " " + quoted[1] : ""
            pairs[window, default: [:]][name + path, default: 0] += 1
        }
    }
}
