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
        try makeDirectories()
        let text = "driver=\(origin.driver ?? "")\noverride=\(origin.override ?? "")\nmoved-to=\(origin.movedTo)\n"
        let final = "\(directory)/\(address)", temporary = "\(directory)/.\(address).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw IOFailure(.write, temporary, value: text, errno: .current) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced else { throw IOFailure(.write, temporary, value: text, errno: .current) }
        guard rename(temporary, final) == 0 else { throw IOFailure(.write, final, value: text, errno: .current) }
        syncDirectory()
    }

    func remove(_ address: PCIAddress) {
        if unlink("\(directory)/\(address)") == 0 { syncDirectory() }
    }

    /// The addresses with a recorded origin.
    func addresses() -> [PCIAddress] {
        ((try? RealKernelIO(paths: HostPaths()).list(directory)) ?? []).compactMap { PCIAddress($0) }.sorted()
    }

    private func makeDirectories() throws(IOFailure) {
        var path = ""
        for component in directory.split(separator: "/") {
            path += "/" + component
            if mkdir(path, 0o700) != 0 && Errno.current != .EEXIST { throw IOFailure(.write, path, errno: .current) }
        }
    }

    private func syncDirectory() {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}
