import HostInterface
import Policy

/// Passes every operation to `base`, but a directory reading, which `interpose` makes: for
/// races the real file layer can lose and a test cannot time (a device swapped between two
/// of a reading's entries).
final class InterposedKernelIO: KernelIO, @unchecked Sendable {
    let base: any KernelIO
    /// Makes each `readDirectory` answer; `base.readDirectory` where nil.
    var interpose: ((String, DirectoryRequest) throws(IOFailure) -> DirectoryReading)?

    init(_ base: any KernelIO) { self.base = base }

    func readDirectory(_ directory: String, _ request: DirectoryRequest) throws(IOFailure) -> DirectoryReading {
        guard let interpose else { return try base.readDirectory(directory, request) }
        return try interpose(directory, request)
    }

    func read(_ path: String) throws(IOFailure) -> String { try base.read(path) }
    func write(_ path: String, _ value: String) throws(IOFailure) { try base.write(path, value) }
    func readLink(_ path: String) throws(IOFailure) -> String { try base.readLink(path) }
    func list(_ path: String) throws(IOFailure) -> [String] { try base.list(path) }
    func listing(_ path: String) throws(IOFailure) -> DirectoryEntries { try base.listing(path) }
    func exists(_ path: String) -> Bool { base.exists(path) }
    func nodeState(_ path: String) throws(IOFailure) -> NodeState? { try base.nodeState(path) }
    func setNodeAccess(
        _ path: String, uid: UInt32?, gid: UInt32?, mode: UInt16?, device: UInt64?
    ) throws(IOFailure) {
        try base.setNodeAccess(path, uid: uid, gid: gid, mode: mode, device: device)
    }
    func nodeAccess(_ path: String) throws(IOFailure) -> IOMMUAccess? { try base.nodeAccess(path) }
    func grantNodeAccess(_ path: String, users: [UInt32], groups: [UInt32]) throws(IOFailure) -> IOMMUGrants {
        try base.grantNodeAccess(path, users: users, groups: groups)
    }
    func revokeNodeAccess(_ path: String, users: [UInt32], groups: [UInt32]) throws(IOFailure) {
        try base.revokeNodeAccess(path, users: users, groups: groups)
    }
    func loadModule(_ name: String) throws(IOFailure) { try base.loadModule(name) }
    func inode(_ path: String) throws(IOFailure) -> UInt64 { try base.inode(path) }
    func resolve(_ path: String) throws(IOFailure) -> String { try base.resolve(path) }
    func readBytes(_ path: String, offset: Int, count: Int) throws(IOFailure) -> [UInt8] {
        try base.readBytes(path, offset: offset, count: count)
    }
    func writeBytes(_ path: String, offset: Int, _ bytes: [UInt8]) throws(IOFailure) {
        try base.writeBytes(path, offset: offset, bytes)
    }
    func entry(beneath base: String, _ relative: String) throws(IOFailure) -> EntryKind? {
        try self.base.entry(beneath: base, relative)
    }
    func list(beneath base: String, _ relative: String) throws(IOFailure) -> [String] {
        try self.base.list(beneath: base, relative)
    }
    func read(beneath base: String, _ relative: String) throws(IOFailure) -> String {
        try self.base.read(beneath: base, relative)
    }
    func write(beneath base: String, _ relative: String, _ value: String) throws(IOFailure) {
        try self.base.write(beneath: base, relative, value)
    }
    func deviceNumber(_ path: String) -> UInt64? { base.deviceNumber(path) }
    func openers(of nodes: Set<UInt64>, devices: Set<PCIAddress>) -> [NodeOpener] {
        base.openers(of: nodes, devices: devices)
    }
    func tryExclusiveOpen(_ path: String) -> Errno? { base.tryExclusiveOpen(path) }
}
