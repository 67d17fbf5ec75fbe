import HostInterface
import Glibc
import Logging
import Policy

/// One line per event: `info: 0000:12:00.0 [mi300x] bind to vfio-pci (now unbound): …`.
/// The device and policy come from the `device` and `policy` metadata.
package struct LineLogHandler: LogHandler {
    package var logLevel: Logger.Level
    package var metadata: Logger.Metadata = [:]
    package let sink: @Sendable (String) -> Void

    package init(level: Logger.Level, sink: @escaping @Sendable (String) -> Void = LineLogHandler.standardError) {
        self.logLevel = level
        self.sink = sink
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        // On the journal, each line starts with its syslog priority (sd-daemon(3)), so
        // `journalctl -p err` finds the errors.
        var text = (Self.toJournal ? "<\(Self.priority(event.level))>" : "") + "\(event.level):"
        if let device = merged["device"] { text += " \(device)" }
        if let policy = merged["policy"], "\(policy)" != "-" { text += " [\(policy)]" }
        // Names and values in a message come from files and the kernel: escaped, a log
        // line can be neither split nor dressed as another.
        sink(escapingControlCharacters(text + " \(event.message)"))
    }

    /// Whether standard error is the journal: `JOURNAL_STREAM` names its device and inode
    /// (systemd.exec(5)); a stream inherited by a child that writes elsewhere does not count.
    package static let toJournal: Bool = {
        guard let stream = getenvString("JOURNAL_STREAM") else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return stream == "\(st.st_dev):\(st.st_ino)"
    }()

    /// syslog's levels: `<3>` for an error.
    package static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// An error said outside the log (a command that cannot start): on standard error,
    /// with its priority on the journal.
    package static func error(_ line: String) {
        standardError((toJournal ? "<3>" : "") + escapingControlCharacters(line))
    }

    package static let standardError: @Sendable (String) -> Void = { line in
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    package static let standardOutput: @Sendable (String) -> Void = { line in
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
    }
}

extension Logger {
    package static func lines(
        level: Logger.Level, sink: @escaping @Sendable (String) -> Void = LineLogHandler.standardError
    ) -> Logger {
        Logger(label: "hotplug-agent") { _ in LineLogHandler(level: level, sink: sink) }
    }
}

/// A line on standard output, unbuffered like the log lines it may interleave with.
package func output(_ line: String = "") {
    LineLogHandler.standardOutput(line)
}
