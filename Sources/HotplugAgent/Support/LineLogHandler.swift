import Glibc
import Logging
import Policy

/// One line per event: `info: 0000:12:00.0 [mi300x] bind to vfio-pci (now unbound): …`.
/// The device and policy come from the `device` and `policy` metadata.
struct LineLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let sink: @Sendable (String) -> Void

    init(level: Logger.Level, sink: @escaping @Sendable (String) -> Void = LineLogHandler.standardError) {
        self.logLevel = level
        self.sink = sink
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        var text = "\(event.level):"
        if let device = merged["device"] { text += " \(device)" }
        if let policy = merged["policy"], "\(policy)" != "-" { text += " [\(policy)]" }
        // Names and values in a message come from files and the kernel: escaped, a log
        // line can be neither split nor dressed as another.
        sink(escapingControlCharacters(text + " \(event.message)"))
    }

    static let standardError: @Sendable (String) -> Void = { line in
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    static let standardOutput: @Sendable (String) -> Void = { line in
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
    }
}

extension Logger {
    static func lines(level: Logger.Level, sink: @escaping @Sendable (String) -> Void = LineLogHandler.standardError) -> Logger {
        Logger(label: "hotplug-agent") { _ in LineLogHandler(level: level, sink: sink) }
    }
}

/// A line on standard output, unbuffered like the log lines it may interleave with.
func output(_ line: String = "") {
    LineLogHandler.standardOutput(line)
}
