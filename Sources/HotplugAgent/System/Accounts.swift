import HostInterface
import Glibc
import Policy

/// User and group names of the host: NSS on the real root, the root's own `etc/passwd` and
/// `etc/group` under a test root.
package struct HostAccounts: AccountResolver {
    package let paths: HostPaths

    package init(paths: HostPaths) { self.paths = paths }

    package func userID(named name: String) -> UInt32? {
        if paths.root == "/" {
            var entry = passwd(), result: UnsafeMutablePointer<passwd>?
            var buffer = [CChar](repeating: 0, count: 16384)
            guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
            return entry.pw_uid
        }
        return lookup(name, in: paths.passwd)
    }

    package func groupID(named name: String) -> UInt32? {
        if paths.root == "/" {
            var entry = group(), result: UnsafeMutablePointer<group>?
            var buffer = [CChar](repeating: 0, count: 16384)
            guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
            return entry.gr_gid
        }
        return lookup(name, in: paths.groupFile)
    }

    package func userName(of id: UInt32) -> String? {
        if paths.root == "/" {
            var entry = passwd(), result: UnsafeMutablePointer<passwd>?
            var buffer = [CChar](repeating: 0, count: 16384)
            guard getpwuid_r(id, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
            return String(cString: entry.pw_name)
        }
        return entry(in: paths.passwd) { UInt32($0.id) == id }.map { String($0.name) }
    }

    /// Under a root, the refusal of its passwd or group file (one another user could
    /// change names nobody); nil on the real root, and when the file is readable or missing.
    package func unavailable(users: Bool) -> String? {
        guard paths.root != "/" else { return nil }
        let file = users ? paths.passwd : paths.groupFile
        guard case .failure(let refusal) = TrustedPath.read(file, limit: 16 << 20, root: paths.root),
            !refusal.isMissing
        else { return nil }
        return "\(file): \(refusal.message)"
    }

    /// `name:x:ID:...` lines: the third field of the line whose first field is `name`, byte
    /// for byte as NSS compares them (`==` on strings holds `é` and `e` with a combining
    /// mark equal, and a Kelvin sign equal to `K` nowhere, but canonically equal names yes).
    private func lookup(_ name: String, in file: String) -> UInt32? {
        entry(in: file) { $0.name.utf8.elementsEqual(name.utf8) }.flatMap { UInt32($0.id) }
    }

    /// The first `name:x:ID:...` line of `file` (passwd, group) that `matches`; the file
    /// is read as root reads what it acts on (`TrustedPath`), so under a root only its
    /// owner's accounts count.
    private func entry(
        in file: String, matching matches: ((name: Substring, id: Substring)) -> Bool
    )
        -> (name: Substring, id: Substring)?
    {
        guard let text = TrustedPath.text(file, limit: 16 << 20, root: paths.root) else { return nil }
        for line in text.split(byte: UInt8(ascii: "\n")) {
            // On the `:` byte: as characters, a field beginning with a combining mark (a
            // user's own GECOS, through chfn) would join the one before it.
            let fields = line.split(byte: UInt8(ascii: ":"), omittingEmptySubsequences: false)
            if fields.count >= 3, matches((fields[0], fields[2])) { return (fields[0], fields[2]) }
        }
        return nil
    }
}

/// Accounts from a table: the simulated host's users and groups.
package struct TableAccounts: AccountResolver {
    package var users: [String: UInt32]
    package var groups: [String: UInt32]

    package init(users: [String: UInt32], groups: [String: UInt32]) {
        self.users = users
        self.groups = groups
    }

    package func userID(named name: String) -> UInt32? { users[name] }
    package func groupID(named name: String) -> UInt32? { groups[name] }
    package func userName(of id: UInt32) -> String? { users.first { $0.value == id }?.key }
}

/// A whole small file (policies, passwd), read with plain system calls.
package func readTextFile(_ path: String) throws(Errno) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw .current }
    defer { close(fd) }
    return String(decoding: try readAll(from: fd, chunk: 65536), as: UTF8.self)
}
