import HostInterface
import Policy

/// The `/dev/iommu` ACL entries the agent added (not those it found), one line each
/// (`user 1000`, `group 993`) in the state directory's `iommu-acl`, so that they can be
/// taken back once no policy names that user or group, also after a restart. `/dev` and
/// `/run` are both made anew at boot, so the record lives exactly as long as the entries.
package final class IOMMUGrantStore: Sendable {
    package let file: String
    private let lock = Locked(())

    /// `root`: the `--root` the state directory lies below, or `/`.
    package let root: String

    package init(stateDirectory: String, root: String = "/") {
        self.root = root
        file = stateDirectory + "/iommu-acl"
    }

    package func load() -> IOMMUGrants {
        lock.withLock { _ in read() }
    }

    /// Records entries made; forgets entries taken back.
    package func update(
        adding added: IOMMUGrants = IOMMUGrants(),
        removing removed: IOMMUGrants = IOMMUGrants()
    ) throws(IOFailure) {
        try lock.withLock { _ throws(IOFailure) in
            var grants = read()
            grants.users = Array(Set(grants.users).union(added.users).subtracting(removed.users)).sorted()
            grants.groups = Array(Set(grants.groups).union(added.groups).subtracting(removed.groups)).sorted()
            let text = grants.users.map { "user \($0)\n" }.joined() + grants.groups.map { "group \($0)\n" }.joined()
            try writeFileAtomically(
                file, text, fileMode: 0o600, directoryMode: 0o700, durable: false, root: root,
                readBack: .rootOrHandedOver)
        }
    }

    private func read() -> IOMMUGrants {
        var grants = IOMMUGrants()
        for line in (TrustedPath.text(file, root: root, owners: .rootOrHandedOver) ?? "").split(
            byte: UInt8(ascii: "\n"))
        {
            let fields = line.split(byte: UInt8(ascii: " "))
            guard fields.count == 2, let id = UInt32(fields[1]) else { continue }
            if fields[0] == "user" { grants.users.append(id) } else if fields[0] == "group" { grants.groups.append(id) }
        }
        return grants
    }
}
