import Glibc
import Policy

/// What the daemon knows of a device that sysfs does not show: its last failure, or a write
/// that has not returned. One small file per device in the state directory
/// (`/run/hotplug-agent/status/<address>`: `failed <error>` or `stuck <what>`), removed once
/// the device settles, so `status` can tell whether or not the daemon runs.
struct StatusStore: Sendable {
    let directory: String

    init(stateDirectory: String) {
        directory = stateDirectory + "/status"
    }

    enum Record: Equatable {
        case failed(String)
        case stuck(String)
    }

    func record(_ address: PCIAddress, _ record: Record) {
        let text: String
        switch record {
        case .failed(let error): text = "failed \(error)\n"
        case .stuck(let what): text = "stuck \(what)\n"
        }
        try? writeFileAtomically("\(directory)/\(address)", text, fileMode: 0o644, directoryMode: 0o755, durable: false)
    }

    func clear(_ address: PCIAddress) {
        unlink("\(directory)/\(address)")
    }

    func load(_ address: PCIAddress) -> Record? {
        guard let text = try? readTextFile("\(directory)/\(address)") else { return nil }
        let line = firstLine(text)
        if line.hasPrefix("failed ") { return .failed(String(line.dropFirst(7))) }
        if line.hasPrefix("stuck ") { return .stuck(String(line.dropFirst(6))) }
        return nil
    }
}
