import HostInterface

/// The record of the daemon's reloads in its state directory (`<generation> ok|refused`),
/// that `hotplug-agent reload` waits on (systemd's ExecReload before 253). The daemon goes
/// on numbering from the record it finds at start: the state directory outlives it
/// (`RuntimeDirectoryPreserve=yes`), and a new daemon counting from 1 again wrote a first
/// reload's record that `reload` took for an old one, and waited until it gave up.
package enum ReloadRecord {
    /// The generation and the outcome the record at `path` holds, read through the trusted
    /// walk below `root` as the daemon's other records are (root's, or the unit's dynamic
    /// user's); nil where there is none or it is not one (missing, masked, another text).
    package static func read(
        _ path: String, root: String
    ) -> Result<(generation: Int, outcome: String)?, TrustedPath.Refusal> {
        switch TrustedPath.read(path, limit: 4096, root: root, owners: .rootOrHandedOver) {
        case .success(.bytes(let bytes)):
            let fields = firstLine(String(decoding: bytes, as: UTF8.self)).split(separator: " ")
            guard fields.count == 2, let number = Int(fields[0]), number >= 0 else { return .success(nil) }
            return .success((number, String(fields[1])))
        case .success(.masked): return .success(nil)
        case .failure(let refusal) where refusal.isMissing: return .success(nil)
        case .failure(let refusal): return .failure(refusal)
        }
    }
}
