import HostInterface
import Glibc
import Policy
import Synchronization

/// What the daemon knows of a device that sysfs does not show: its last failure, or a write
/// that has not returned. One small file per device in the state directory
/// (`/run/hotplug-agent/status/<address>`: `failed <error>` or `stuck <what>`), removed once
/// the device settles, so `status` can tell whether or not the daemon runs. The agent is
/// the only writer: once a device is known to have no record, settling costs no syscall.
package final class StatusStore: Sendable {
    package let directory: String
    /// Devices known to have no record file.
    private let clean = Mutex(Set<PCIAddress>())

    /// `root`: the `--root` the state directory lies below, or `/`.
    package let root: String

    package init(stateDirectory: String, root: String = "/") {
        self.root = root
        directory = stateDirectory + "/status"
    }

    package enum Record: Equatable {
        case failed(String)
        case stuck(String)
    }

    package func record(_ address: PCIAddress, _ record: Record) {
        let text: String
        switch record {
        case .failed(let error): text = "failed \(error)\n"
        case .stuck(let what): text = "stuck \(what)\n"
        }
        clean.withLock { _ = $0.remove(address) }
        try? writeFileAtomically("\(directory)/\(address)", text, fileMode: 0o644, directoryMode: 0o755, durable: false,
                                 root: root)
    }

    package func clear(_ address: PCIAddress) {
        guard !clean.withLock({ $0.contains(address) }) else { return }
        if unlink("\(directory)/\(address)") == 0 || errno == ENOENT { clean.withLock { _ = $0.insert(address) } }
    }

    package func load(_ address: PCIAddress) -> Record? {
        guard let text = TrustedPath.text("\(directory)/\(address)", root: root) else { return nil }
        let line = firstLine(text)
        if line.hasPrefix("failed ") { return .failed(String(line.dropFirst(7))) }
        if line.hasPrefix("stuck ") { return .stuck(String(line.dropFirst(6))) }
        return nil
    }
}
