import ArgumentParser
import Glibc
import HostInterface
import HotplugAgent

/// A new private directory `/tmp/<prefix>.XXXXXX` for a simulated host's agent state;
/// exits 1 saying why when none can be made.
func temporaryDirectory(_ prefix: String) throws -> String {
    var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
    guard mkdtemp(&template) != nil else {
        LineLogHandler.error("hotplug-agent: cannot make a temporary directory: \(Errno.current)")
        throw ExitCode(1)
    }
    return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
