import HostInterface
import Policy
import Synchronization

/// Passes every operation to another `KernelIO` and counts them by kind: the benchmark's
/// measure of work done per device, independent of the machine.
package final class CountingKernelIO: KernelIO {
    let base: any KernelIO
    private let counts = Mutex<[String: Int]>([:])

    package init(_ base: any KernelIO) { self.base = base }

    /// Operations so far by kind (`read`, `write`, `readlink`, …).
    package var tally: [String: Int] { counts.withLock { $0 } }
    var total: Int { tally.values.reduce(0, +) }
    package func reset() { counts.withLock { $0.removeAll() } }

    private func count(_ kind: String) { counts.withLock { $0[kind, default: 0] += 1 } }

    package func read(_ path: String) throws(IOFailure) -> String { count("read"); return try base.read(path) }
    package func write(_ path: String, _ value: String) throws(IOFailure) {
        count("write"); try base.write(path, value)
    }
    package func readLink(_ path: String) throws(IOFailure) -> String {
        count("readlink"); return try base.readLink(path)
    }
    package func list(_ path: String) throws(IOFailure) -> [String] { count("list"); return try base.list(path) }
    package func exists(_ path: String) -> Bool { count("stat"); return base.exists(path) }
    package func nodeState(_ path: String) throws(IOFailure) -> NodeState? {
        count("stat"); return try base.nodeState(path)
    }
    package func setNodeAccess(
        _ path: String, uid: UInt32?, gid: UInt32?, mode: UInt16?, device: UInt64?
    ) throws(IOFailure) {
        count("chown")
        try base.setNodeAccess(path, uid: uid, gid: gid, mode: mode, device: device)
    }
    package func nodeAccess(_ path: String) throws(IOFailure) -> IOMMUAccess? {
        count("getxattr"); return try base.nodeAccess(path)
    }
    package func grantNodeAccess(
        _ path: String, users: [UInt32], groups: [UInt32]
    ) throws(IOFailure)
        -> IOMMUGrants
    {
        count("setxattr")
        return try base.grantNodeAccess(path, users: users, groups: groups)
    }

    package func revokeNodeAccess(_ path: String, users: [UInt32], groups: [UInt32]) throws(IOFailure) {
        count("setxattr")
        try base.revokeNodeAccess(path, users: users, groups: groups)
    }
    package func loadModule(_ name: String) throws(IOFailure) { count("modprobe"); try base.loadModule(name) }
    package func inode(_ path: String) throws(IOFailure) -> UInt64 { count("stat"); return try base.inode(path) }
    package func resolve(_ path: String) throws(IOFailure) -> String {
        count("realpath"); return try base.resolve(path)
    }
    package func readBytes(_ path: String, offset: Int, count bytes: Int) throws(IOFailure) -> [UInt8] {
        count("read")
        return try base.readBytes(path, offset: offset, count: bytes)
    }
    package func writeBytes(_ path: String, offset: Int, _ bytes: [UInt8]) throws(IOFailure) {
        count("write")
        try base.writeBytes(path, offset: offset, bytes)
    }
    package func deviceNumber(_ path: String) -> UInt64? { count("stat"); return base.deviceNumber(path) }
    package func openers(of nodes: Set<UInt64>, devices: Set<PCIAddress>) -> [NodeOpener] {
        count("proc")
        return base.openers(of: nodes, devices: devices)
    }
    package func tryExclusiveOpen(_ path: String) -> Errno? { count("open"); return base.tryExclusiveOpen(path) }
    package func entry(beneath directory: String, _ relative: String) throws(IOFailure) -> EntryKind? {
        count("stat")
        return try base.entry(beneath: directory, relative)
    }
    package func list(beneath directory: String, _ relative: String) throws(IOFailure) -> [String] {
        count("list")
        return try base.list(beneath: directory, relative)
    }
    package func read(beneath directory: String, _ relative: String) throws(IOFailure) -> String {
        count("read")
        return try base.read(beneath: directory, relative)
    }
    package func write(beneath directory: String, _ relative: String, _ value: String) throws(IOFailure) {
        count("write")
        try base.write(beneath: directory, relative, value)
    }
}
