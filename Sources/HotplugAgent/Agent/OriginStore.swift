import HostInterface
import Glibc
import Policy
import Synchronization

/// Where each device came from before the agent first moved it: one small file per device
/// in the state directory (`/run/hotplug-agent/origins/<address>`), so the agent can put
/// devices back when no policy wants them, also after a restart.
///
/// Files are written atomically (a temporary file, then rename): after the agent dies at
/// any point each file is either the old one or the new one, and stray temporary files are
/// ignored. They are not fsynced: `/run` is emptied at boot, and the records need only
/// outlive the agent, not the machine.
///
/// The agent is the only writer of its state directory, so each record is read from its
/// file once and then kept in memory beside it.
package final class OriginStore: Sendable {
    package let directory: String
    /// Records already read or written; `.some(nil)`: known to have none.
    private let known = Mutex<[PCIAddress: DriverOrigin?]>([:])

    /// `root`: the `--root` the state directory lies below (its links stay inside it), or `/`.
    package let root: String

    package init(stateDirectory: String, root: String = "/") {
        self.root = root
        directory = stateDirectory + "/origins"
    }

    package func load(_ address: PCIAddress) -> DriverOrigin? {
        if let origin = known.withLock({ $0[address] }) { return origin }
        let origin = read(address)
        known.withLock { $0[address] = origin }
        return origin
    }

    private func read(_ address: PCIAddress) -> DriverOrigin? {
        // Root acts on it (binds the device to the driver it names): read only if trusted.
        guard let text = TrustedPath.text("\(directory)/\(address)", root: root, owners: .rootOrHandedOver) else {
            return nil
        }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            fields[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        var sriov: SRIOVOrigin?
        if let count = fields["sriov-vfs"].flatMap({ Int($0) }), count >= 0, let autoprobe = fields["sriov-autoprobe"],
            ["0", "1"].contains(autoprobe)
        {
            sriov = SRIOVOrigin(numVFs: count, autoprobe: autoprobe == "1")
        }
        let movedTo = fields["moved-to"].flatMap { $0.isEmpty ? nil : $0 }
        guard movedTo.map({ DriverKind.isValidName($0) || $0 == "none" }) ?? (sriov != nil) else { return nil }
        let driver = fields["driver"].flatMap { $0.isEmpty ? nil : $0 }
        let override = fields["override"].flatMap { $0.isEmpty ? nil : $0 }
        // Names the agent will write into sysfs paths and driver_override: driver names only.
        guard [driver, override].allSatisfy({ $0.map(DriverKind.isValidName) ?? true }) else { return nil }
        return DriverOrigin(driver: driver, override: override, movedTo: movedTo, sriov: sriov)
    }

    package func save(_ address: PCIAddress, _ origin: DriverOrigin) throws(IOFailure) {
        var text =
            "driver=\(origin.driver ?? "")\noverride=\(origin.override ?? "")\nmoved-to=\(origin.movedTo ?? "")\n"
        if let sriov = origin.sriov {
            text += "sriov-vfs=\(sriov.numVFs)\nsriov-autoprobe=\(sriov.autoprobe ? 1 : 0)\n"
        }
        do {
            try writeFileAtomically(
                "\(directory)/\(address)", text, fileMode: 0o600, directoryMode: 0o700, durable: false,
                root: root)
            known.withLock { $0[address] = origin }
        } catch {
            known.withLock { $0[address] = nil }
            throw error
        }
    }

    /// Forgets the records of devices that are not `present`: they left while no agent
    /// ran, and whatever is plugged in there next did not come from that driver. Returns
    /// the devices forgotten.
    package func sweep(keeping present: Set<PCIAddress>) -> [PCIAddress] {
        guard case .success(let entries) = TrustedPath.list(directory, root: root, owners: .rootOrHandedOver) else {
            return []
        }
        let gone = entries.names.compactMap(PCIAddress.init).filter { !present.contains($0) }.sorted()
        remove(gone)
        return gone
    }

    package func remove(_ address: PCIAddress) { remove([address]) }

    /// Unlinks the records through the directory the trusted walk reaches (`TrustedPath.unlink`).
    private func remove(_ addresses: [PCIAddress]) {
        guard !addresses.isEmpty else { return }
        let gone = TrustedPath.unlink(
            addresses.map(\.description), in: directory, root: root, owners: .rootOrHandedOver)
        // Unless the file is still there (or cannot be told), the device has no record now.
        known.withLock { for address in addresses { $0[address] = gone.contains("\(address)") ? .some(nil) : nil } }
    }
}
