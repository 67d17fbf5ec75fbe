import Glibc
import Policy

/// Where each device came from before the agent first moved it: one small file per device
/// in the state directory (`/run/hotplug-agent/origins/<address>`), so the agent can put
/// devices back when no policy wants them, also after a restart.
///
/// Files are written atomically (a temporary file, fsync, rename, fsync of the directory):
/// after a crash at any point each file is either the old one or the new one, and stray
/// temporary files are ignored.
struct OriginStore: Sendable {
    let directory: String

    init(stateDirectory: String) {
        directory = stateDirectory + "/origins"
    }

    func load(_ address: PCIAddress) -> DriverOrigin? {
        guard let text = try? readTextFile("\(directory)/\(address)") else { return nil }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            fields[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        guard let movedTo = fields["moved-to"], DriverKind.isValidName(movedTo) || movedTo == "none" else { return nil }
        let driver = fields["driver"].flatMap { $0.isEmpty ? nil : $0 }
        let override = fields["override"].flatMap { $0.isEmpty ? nil : $0 }
        return DriverOrigin(driver: driver, override: override, movedTo: movedTo)
    }

    func save(_ address: PCIAddress, _ origin: DriverOrigin) throws(IOFailure) {
        let text = "driver=\(origin.driver ?? "")\noverride=\(origin.override ?? "")\nmoved-to=\(origin.movedTo)\n"
        try writeFileAtomically("\(directory)/\(address)", text, fileMode: 0o600, directoryMode: 0o700)
    }

    func remove(_ address: PCIAddress) {
        if unlink("\(directory)/\(address)") == 0 { syncDirectory(directory) }
    }
}
