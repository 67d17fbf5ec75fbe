import HostInterface
import Policy
import Synchronization

/// Passes every operation to another `KernelIO` and counts them by kind: the benchmark's
/// measure of work done per device, independent of the machine; and how long they took
/// there, to tell the simulated kernel's share of a figure from the agent's.
package final class CountingKernelIO: KernelIO {
    let base: any KernelIO
    private let counts = Mutex<[String: Int]>([:])
    private let journal = Mutex<[String]?>(nil)
    private let inside = Atomic<Int64>(0)

    package init(_ base: any KernelIO) { self.base = base }

    /// Also keep each operation with its path, in order, until `reset`.
    package func keepJournal() { journal.withLock { $0 = [] } }
    /// The operations since `reset` as `kind path`, when `keepJournal` was called.
    package var operations: [String] { journal.withLock { $0 ?? [] } }

    /// Operations so far by kind (`read`, `write`, `readlink`, …).
    package var tally: [String: Int] { counts.withLock { $0 } }
    var total: Int { tally.values.reduce(0, +) }
    /// The time spent in `base` so far, all threads together: on one worker that does not
    /// wait, the CPU the kernel below (the simulated one) took.
    package var timeInside: Duration { .nanoseconds(inside.load(ordering: .relaxed)) }
    package func reset() {
        counts.withLock { $0.removeAll() }
        journal.withLock { if $0 != nil { $0 = [] } }
    }

    /// Counts the operation; `spent(since:)` with what it returns adds the time it took.
    private func count(_ kind: String, _ path: @autoclosure () -> String = "") -> ContinuousClock.Instant {
        counts.withLock { $0[kind, default: 0] += 1 }
        journal.withLock { $0?.append(kind + " " + path()) }
        return .now
    }

    private func spent(since start: ContinuousClock.Instant) {
        let spent = (ContinuousClock.now - start).components
        inside.add(spent.seconds * 1_000_000_000 + spent.attoseconds / 1_000_000_000, ordering: .relaxed)
    }

    package func read(_ path: String) throws(IOFailure) -> String {
        let start = count("read", path)
        defer { spent(since: start) }
        return try base.read(path)
    }
    package func write(_ path: String, _ value: String) throws(IOFailure) {
        let start = count("write", path)
        defer { spent(since: start) }
        try base.write(path, value)
    }
    package func readLink(_ path: String) throws(IOFailure) -> String {
        let start = count("readlink", path)
        defer { spent(since: start) }
        return try base.readLink(path)
    }
    package func list(_ path: String) throws(IOFailure) -> [String] {
        let start = count("list", path)
        defer { spent(since: start) }
        return try base.list(path)
    }
    package func listing(_ path: String) throws(IOFailure) -> DirectoryEntries {
        let start = count("list", path)
        defer { spent(since: start) }
        return try base.listing(path)
    }
    package func exists(_ path: String) -> Bool {
        let start = count("stat", path)
        defer { spent(since: start) }
        return base.exists(path)
    }
    package func nodeState(_ path: String) throws(IOFailure) -> NodeState? {
        let start = count("stat", path)
        defer { spent(since: start) }
        return try base.nodeState(path)
    }
    package func setNodeAccess(
        _ path: String, uid: UInt32?, gid: UInt32?, mode: UInt16?, device: UInt64?
    ) throws(IOFailure) {
        let start = count("chown", path)
        defer { spent(since: start) }
        try base.setNodeAccess(path, uid: uid, gid: gid, mode: mode, device: device)
    }
    package func nodeAccess(_ path: String) throws(IOFailure) -> IOMMUAccess? {
        let start = count("getxattr", path)
        defer { spent(since: start) }
        return try base.nodeAccess(path)
    }
    package func grantNodeAccess(
        _ path: String, users: [UInt32], groups: [UInt32]
    ) throws(IOFailure)
        -> IOMMUGrants
    {
        let start = count("setxattr", path)
        defer { spent(since: start) }
        return try base.grantNodeAccess(path, users: users, groups: groups)
    }

    package func revokeNodeAccess(_ path: String, users: [UInt32], groups: [UInt32]) throws(IOFailure) {
        let start = count("setxattr", path)
        defer { spent(since: start) }
        try base.revokeNodeAccess(path, users: users, groups: groups)
    }
    package func loadModule(_ name: String) throws(IOFailure) {
        let start = count("modprobe", name)
        defer { spent(since: start) }
        try base.loadModule(name)
    }
    package func inode(_ path: String) throws(IOFailure) -> UInt64 {
        let start = count("stat", path)
        defer { spent(since: start) }
        return try base.inode(path)
    }
    package func resolve(_ path: String) throws(IOFailure) -> String {
        let start = count("realpath", path)
        defer { spent(since: start) }
        return try base.resolve(path)
    }
    package func readBytes(_ path: String, offset: Int, count bytes: Int) throws(IOFailure) -> [UInt8] {
        let start = count("read", path)
        defer { spent(since: start) }
        return try base.readBytes(path, offset: offset, count: bytes)
    }
    package func writeBytes(_ path: String, offset: Int, _ bytes: [UInt8]) throws(IOFailure) {
        let start = count("write", path)
        defer { spent(since: start) }
        try base.writeBytes(path, offset: offset, bytes)
    }
    package func readDirectory(
        _ directory: String, _ request: DirectoryRequest
    ) throws(IOFailure) -> DirectoryReading {
        let start = count("dirread", directory)
        defer { spent(since: start) }
        return try base.readDirectory(directory, request)
    }
    package func deviceNumber(_ path: String) -> UInt64? {
        let start = count("stat", path)
        defer { spent(since: start) }
        return base.deviceNumber(path)
    }
    package func openers(of nodes: Set<UInt64>, devices: Set<PCIAddress>) -> [NodeOpener] {
        let start = count("proc", "")
        defer { spent(since: start) }
        return base.openers(of: nodes, devices: devices)
    }
    package func tryExclusiveOpen(_ path: String) -> Errno? {
        let start = count("open", path)
        defer { spent(since: start) }
        return base.tryExclusiveOpen(path)
    }
    package func entry(beneath directory: String, _ relative: String) throws(IOFailure) -> EntryKind? {
        let start = count("stat", directory + "/" + relative)
        defer { spent(since: start) }
        return try base.entry(beneath: directory, relative)
    }
    package func list(beneath directory: String, _ relative: String) throws(IOFailure) -> [String] {
        let start = count("list", directory + "/" + relative)
        defer { spent(since: start) }
        return try base.list(beneath: directory, relative)
    }
    package func read(beneath directory: String, _ relative: String) throws(IOFailure) -> String {
        let start = count("read", directory + "/" + relative)
        defer { spent(since: start) }
        return try base.read(beneath: directory, relative)
    }
    package func write(beneath directory: String, _ relative: String, _ value: String) throws(IOFailure) {
        let start = count("write", directory + "/" + relative)
        defer { spent(since: start) }
        try base.write(beneath: directory, relative, value)
    }
}
