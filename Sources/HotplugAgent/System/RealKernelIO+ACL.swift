import HostInterface
import CLinux
import Glibc
import Policy

/// POSIX ACLs of device nodes through the `system.posix_acl_access` attribute, on the node
/// opened `O_PATH|O_NOFOLLOW` and checked to be a character device, as ownership is.
extension RealKernelIO {
    package func nodeAccess(_ path: String) throws(IOFailure) -> IOMMUAccess? {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if Errno.current == .ENOENT { return nil }
            throw IOFailure(.stat, path, errno: .current)
        }
        guard st.st_mode & S_IFMT == S_IFCHR else { return nil }
        let acl = try readACL(path) ?? POSIXACL(mode: UInt16(st.st_mode & 0o777))
        return acl.access(owner: st.st_uid, group: st.st_gid)
    }

    package func grantNodeAccess(_ path: String, users: [UInt32], groups: [UInt32]) throws(IOFailure)
        -> IOMMUGrants {
        var made = IOMMUGrants()
        try changeACL(path) { acl in made = acl.grant(users: users, groups: groups) }
        return made
    }

    package func revokeNodeAccess(_ path: String, users: [UInt32], groups: [UInt32]) throws(IOFailure) {
        try changeACL(path) { $0.revoke(users: users, groups: groups) }
    }

    /// Read, change and write back the ACL of the character device at `path`, opened
    /// `O_PATH|O_NOFOLLOW` and reached again through its descriptor. An ACL the agent
    /// cannot decode is left alone, never replaced by one made from the mode.
    private func changeACL(_ path: String, _ change: (inout POSIXACL) -> Void) throws(IOFailure) {
        let fd = openToChange(path, O_PATH | O_NOFOLLOW)
        guard fd >= 0 else { throw IOFailure(.open, path, errno: .current) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw IOFailure(.stat, path, errno: .current) }
        guard st.st_mode & S_IFMT == S_IFCHR else {
            throw IOFailure(.open, path, errno: .EINVAL, detail: "not a character device, left alone")
        }
        let handle = "/proc/self/fd/\(fd)"
        var acl = try readACL(handle, reporting: path) ?? POSIXACL(mode: UInt16(st.st_mode & 0o777))
        change(&acl)
        let bytes = acl.xattr
        guard bytes.withUnsafeBytes({ setxattr(handle, POSIXACL.attribute, $0.baseAddress, $0.count, 0) }) == 0 else {
            throw IOFailure(.setxattr, path, value: POSIXACL.attribute, errno: .current)
        }
    }

    /// The node's ACL; nil when it has none (its mode says it all). One the agent cannot
    /// decode is an error: writing back anything else would take entries away.
    private func readACL(_ path: String, reporting name: String? = nil) throws(IOFailure) -> POSIXACL? {
        var buffer = [UInt8](repeating: 0, count: 4 + 8 * 64)
        let count = buffer.withUnsafeMutableBytes { getxattr(path, POSIXACL.attribute, $0.baseAddress, $0.count) }
        guard count >= 0 else {
            if Errno.current == .ENODATA || Errno.current == .EOPNOTSUPP { return nil }
            throw IOFailure(.getxattr, name ?? path, value: POSIXACL.attribute, errno: .current)
        }
        return try POSIXACL.decoding(Array(buffer[..<count]), of: name ?? path)
    }
}
