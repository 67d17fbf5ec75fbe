import HostInterface
import Glibc
import Policy

/// The CDI specs as files in `/var/run/cdi` (`hotplug-agent.json`, and one more per kind a
/// policy names), which podman, containerd and CRI-O read. Each is written with the one safe
/// writer whenever its text changes; a spec of ours whose kind has no device left is removed
/// (also one left by an earlier run), so no runtime is ever handed a device that left VFIO.
package final class CDISpecFiles: @unchecked Sendable {  // used from the daemon's thread only
    package let directory: String
    /// The text of each file as last written; nil until the first update.
    private var written: [String: String]?

    /// The `--root` the directory lies below (links resolve inside it), or `/`.
    package let root: String

    /// `directory`: absolute; by default `/var/run/cdi` below the root (`root`).
    package init(directory: String, root: String = "/") {
        self.directory = directory
        self.root = root
    }

    package static func defaultDirectory(_ paths: HostPaths) -> String { paths.under("/var/run/cdi") }

    /// Brings the files in line with `specs`: what changed is written, what is no longer
    /// there removed. Returns what failed (nothing is retried until the specs change again).
    package func update(_ specs: [CDISpec]) -> [IOFailure] {
        let wanted = Dictionary(uniqueKeysWithValues: specs.map { ($0.fileName, CDISpecFiles.text($0)) })
        guard wanted != written else { return [] }
        var failures: [IOFailure] = []
        for (name, text) in wanted.sorted(by: { $0.key < $1.key }) where written?[name] != text {
            do {
                try writeFileAtomically(directory + "/" + name, text, fileMode: 0o644, directoryMode: 0o755,
                                        durable: false, root: root)
            } catch {
                failures.append(error)
            }
        }
        failures += removeFiles(except: Set(wanted.keys))
        written = failures.isEmpty ? wanted : nil
        return failures
    }

    /// Removes our spec files (`hotplug-agent.json`, `hotplug-agent.*.json`) not in `keep`.
    /// The directory is reached through the trusted walk; a name is only unlinked, never
    /// followed, so a link planted in its place is what goes.
    private func removeFiles(except keep: Set<String>) -> [IOFailure] {
        // Reached the way the writer reaches it, so that what could be written can be removed.
        let fd: Int32
        switch TrustedPath.openDirectoryForWriting(directory, creating: 0o755, root: root) {
        case .success(let opened): fd = opened
        case .failure(let refusal):
            return [IOFailure(.open, directory, errno: refusal.isMissing ? .ENOENT : .EPERM, detail: refusal.message)]
        }
        defer { close(fd) }
        // Listed through a second descriptor (the listing closes its own), unlinked through this one.
        let listing = dup(fd)
        guard listing >= 0, let entries = DirectoryEntries(closing: listing) else {
            return [IOFailure(.open, directory, errno: .current)]
        }
        let stale = entries.names.filter { CDISpecFiles.isOurs($0) && !keep.contains($0) }
        return stale.compactMap { name in
            unlinkat(fd, name, 0) == 0 || errno == ENOENT
                ? nil : IOFailure(.write, directory + "/" + name, errno: .current)
        }
    }

    /// Brings the files in line with the host now, logging what failed once per kind of
    /// failure (`lastFailure` keeps it between calls). Returns whether all went well.
    /// A host that cannot be read fails closed: no device is listed until it can be again.
    @discardableResult
    package func update(from agent: Agent, lastFailure: inout String?) -> Bool {
        let specs = agent.cdiSpecs()
        var failure = specs.flatMap { update($0).map { "\($0)" }.first }
        if specs == nil {
            let removal = update([]).map { "\($0)" }.first
            failure = "the host could not be read; " + (removal.map { "the specs could not be removed: \($0)" }
                                                           ?? "no device is listed")
        }
        if let failure, failure != lastFailure { agent.log.error("CDI spec not written: \(failure)") }
        if failure == nil, lastFailure != nil { agent.log.notice("CDI spec written again") }
        lastFailure = failure
        return failure == nil
    }

    package static func isOurs(_ name: String) -> Bool {
        name == "hotplug-agent.json" || (name.hasPrefix("hotplug-agent.") && name.hasSuffix(".json"))
    }

    /// A spec as JSON, keys sorted, as the file holds it and `hotplug-agent cdi` prints it.
    package static func text(_ spec: CDISpec) -> String {
        prettyJSON(SpecJSON(spec)) + "\n"
    }

    /// The spec's JSON shape (container-device-interface's `specs-go`, version 0.5).
    private struct SpecJSON: Encodable {
        package var cdiVersion = CDISpec.version
        package var kind: String
        package var devices: [DeviceJSON]

        package init(_ spec: CDISpec) {
            kind = spec.kind.description
            devices = spec.devices.map { device in
                DeviceJSON(name: device.name, containerEdits: EditsJSON(deviceNodes: device.nodes.map { node in
                    NodeJSON(path: node.path, type: "c", uid: node.uid, gid: node.gid,
                             fileMode: node.mode.map(Int.init))
                }))
            }
        }
    }

    private struct DeviceJSON: Encodable {
        package var name: String
        package var containerEdits: EditsJSON
    }

    private struct EditsJSON: Encodable {
        package var deviceNodes: [NodeJSON]
    }

    private struct NodeJSON: Encodable {
        package var path: String
        package var type: String
        package var uid: UInt32?
        package var gid: UInt32?
        /// Permission bits, as the number Go's `os.FileMode` reads (0660 is 432).
        package var fileMode: Int?
    }
}
