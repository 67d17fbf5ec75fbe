import HostInterface
import Glibc
import Policy

/// What the daemon knows of a device that sysfs does not show: its last failure, or a write
/// that has not returned. One small file per device in the state directory
/// (`/run/hotplug-agent/status/<address>`: `failed <error>` or `stuck <what>`), removed once
/// the device settles, so `status` can tell whether or not the daemon runs. The agent is
/// the only writer: the records there are listed once, and settling a device without one
/// costs no system call.
package final class StatusStore: Sendable {
    package let directory: String
    /// The devices with a record file; nil until the directory is first listed.
    private let recorded = Locked<Set<PCIAddress>?>(nil)

    /// `root`: the `--root` the state directory lies below, or `/`.
    package let root: String
    /// False for a dry run's store and `status`'s: it reads records and never writes or
    /// removes one.
    package let writable: Bool

    package init(stateDirectory: String, root: String = "/", writable: Bool) {
        self.root = root
        self.writable = writable
        directory = stateDirectory + "/status"
    }

    package enum Record: Equatable {
        case failed(String)
        case stuck(String)
    }

    package func record(_ address: PCIAddress, _ record: Record) {
        guard writable else { return }
        let text: String
        switch record {
        case .failed(let error): text = "failed \(error)\n"
        case .stuck(let what): text = "stuck \(what)\n"
        }
        _ = withRecorded { $0.insert(address) }
        try? writeFileAtomically(
            "\(directory)/\(address)", text, fileMode: 0o644, directoryMode: 0o755, durable: false, root: root,
            readBack: .rootOrHandedOver)
    }

    /// Forgets the listing, so that records another agent wrote since are found and removed
    /// as their devices settle (called at a reload).
    package func forgetListing() { recorded.withLock { $0 = nil } }

    /// Removes the device's record: unlinked through the directory the trusted walk reached,
    /// so no link on the way leads the removal elsewhere.
    package func clear(_ address: PCIAddress) {
        guard writable else { return }
        guard withRecorded({ $0.contains(address) }) else { return }
        if !TrustedPath.unlink([address.description], in: directory, root: root, owners: .rootOrHandedOver).isEmpty {
            _ = withRecorded { $0.remove(address) }
        }
    }

    /// `body` on the devices with a record, listed from the directory the first time (a
    /// directory that is missing or not to be trusted holds none the agent would remove).
    private func withRecorded<T>(_ body: (inout Set<PCIAddress>) -> T) -> T {
        recorded.withLock { known in
            if known == nil {
                let names = (try? TrustedPath.list(directory, root: root, owners: .rootOrHandedOver).get())?.names ?? []
                known = Set(names.compactMap(PCIAddress.init))
            }
            return body(&known!)
        }
    }

    /// The device's record, for `status` to show: read through the trusted walk, as the
    /// daemon's other records are (so also when it is the unit's dynamic user's), at most 4 KiB.
    package func load(_ address: PCIAddress) -> Record? {
        guard let text = TrustedPath.text("\(directory)/\(address)", limit: 4096, root: root, owners: .rootOrHandedOver)
        else { return nil }
        let line = firstLine(text)
        if line.hasPrefix("failed ") { return .failed(String(line.dropFirst(7))) }
        if line.hasPrefix("stuck ") { return .stuck(String(line.dropFirst(6))) }
        return nil
    }
}
