import HostInterface
import Policy
import Synchronization

/// Passes every operation to another `KernelIO` and counts them by kind: the benchmark's
/// measure of work done per device, independent of the machine.
package final class CountingKernelIO: KernelIO {
    let base: any KernelIO
    private let counts = Mutex<[String: Int]>([:])
    private let journal = Mutex<[String]?>(nil)

    package init(_ base: any KernelIO) { self.base = base }

    /// Also keep each operation with its path, in order, until `reset`.
    package func keepJournal() { journal.withLock { $0 = [] } }
    /// The operations since `reset` as `kind path`, when `keepJournal` was called.
    package var operations: [String] { journal.withLock { $0 ?? [] } }

    /// Operations so far by kind (`read`, `write`, `readlink`, …).
    package var tally: [String: Int] { counts.withLock { $0 } }
    var total: Int { tally.values.reduce(0, +) }
    package func reset() {
        counts.withLock { $0.removeAll() }
        journal.withLock { if $0 != nil { $0 = [] } }
    }

    private func count(_ kind: String, _ path: @autoclosure () -> String = "") {
        counts.withLock { $0[kind, default: 0] += 1 }
        journal.withLock { $0?.append(kind + " " + path()) }
    }

    package func read(_ path: String) throws(IOFailure) -> String { count("read", path); return try base.read(path) }
    package func write(_ path: String, _ value: String) throws(IOFailure) {
        count("write", path); try base.write(path, value)
    }
    package func readLink(_ path: String) throws(IOFailure) -> String {
        count("readlink", path); return try base.readLink(path)
    }
    package func list(_ path: String) throws(IOFailure) -> [String] { count("list", path); return try base.list(path) }
    package func listing(_ path: String) throws(IOFailure) -> DirectoryEntries {
        count("list", path)
        return try base.listing(path)
    }
    package func exists(_ path: String) -> Bool { count("stat", path); return base.exists(path) }
    package func nodeState(_ path: String) throws(IOFailure) -> NodeState? {
        count("stat", path); return try base.nodeState(path)
    }
    package func setNodeAccess(
        _ path: String, uid: UInt32?, gid: UInt32?, mode: UInt16?, device: UInt64?
    ) throws(IOFailure) {
        count("chown", path)
        try base.setNodeAccess(path, uid: uid, gid: gid, mode: mode, device: device)
    }
    package func nodeAccess(_ path: String) throws(IOFailure) -> IOMMUAccess? {
        count("getxattr", path); return try base.nodeAccess(path)
    }
    package func grantNodeAccess(
        _ path: String, users: [UInt32], groups: [UInt32]
    ) throws(IOFailure)
        -> IOMMUGrants
    {
        count("setxattr", path)
        return try base.grantNodeAccess(path, users: users, groups: groups)
    }

    package func revokeNodeAccess(_ path: String, users: [UInt32], groups: [UInt32]) throws(IOFailure) {
        count("setxattr", path)
        try base.revokeNodeAccess(path, users: users, groups: groups)
    }
    package func loadModule(_ name: String) throws(IOFailure) { count("modprobe", name); try base.loadModule(name) }
    package func inode(_ path: String) throws(IOFailure) -> UInt64 { count("stat", path); return try base.inode(path) }
    package func resolve(_ path: String) throws(IOFailure) -> String {
        count("realpath", path); return try base.resolve(path)
    }
    package func readBytes(_ path: String, offset: Int, count bytes: Int) throws(IOFailure) -> [UInt8] {
        count("read", path)
        return try base.readBytes(path, offset: offset, count: bytes)
    }
    package func writeBytes(_ path: String, offset: Int, _ bytes: [UInt8]) throws(IOFailure) {
        count("write", path)
        try base.writeBytes(path, offset: offset, bytes)
    }
    package func readDirectory(
        _ directory: String, _ request: DirectoryRequest
    ) throws(IOFailure) -> DirectoryReading {
        count("dirread", directory)
        return try base.readDirectory(directory, request)
    }
    package func deviceNumber(_ path: String) -> UInt64? { count("stat", path); return base.deviceNumber(path) }
    package func openers(of nodes: Set<UInt64>, devices: Set<PCIAddress>) -> [NodeOpener] {
        count("proc", "")
        return base.openers(of: nodes, devices: devices)
    }
    package func tryExclusiveOpen(_ path: String) -> Errno? { count("open", path); return base.tryExclusiveOpen(path) }
    package func entry(beneath directory: String, _ relative: String) throws(IOFailure) -> EntryKind? {
        count("stat", directory + "/" + relative)
        return try base.entry(beneath: directory, relative)
    }
    package func list(beneath directory: String, _ relative: String) throws(IOFailure) -> [String] {
        count("list", directory + "/" + relative)
        return try base.list(beneath: directory, relative)
    }
    package func read(beneath directory: String, _ relative: String) throws(IOFailure) -> String {
        count("read", directory + "/" + relative)
        return try base.read(beneath: directory, relative)
    }
    package func write(beneath directory: String, _ relative: String, _ value: String) throws(IOFailure) {
        count("write", directory + "/" + relative)
        try base.write(beneath: directory, relative, value)
    }
}
