import Glibc
import HostInterface
import HotplugAgent
import Policy
import Simulation

/// The real file layer on a tree that behaves like a kernel: every operation is the real
/// one (`RealKernelIO`) on a sysfs tree in a temporary directory; each write is then done
/// to a simulated kernel as well, which decides its outcome, and the tree is brought level
/// with the kernel's state before the write returns (a kernel's bind is done when the write
/// to `drivers_probe` returns). The agent's system calls on it are a real host's.
///
/// The mirror's own system calls happen between two markers (`KernelMarker`), so a trace
/// of the process can leave them out.
final class MirroredKernelIO: KernelIO, @unchecked Sendable {
    let real: RealKernelIO
    let kernel: SimulatedKernel
    let tree: SysfsTree
    private let root: String

    /// `kernel` answers for `/` (its paths' root); the tree lies under `root`.
    init(root: String, kernel: SimulatedKernel) throws(IOFailure) {
        let paths = HostPaths(root: root)
        self.root = paths.root
        // As sysfs: the tree only ever gets directories made new (a device that leaves is
        // removed, one that comes is made), never one put back, on tmpfs (the bench's), which
        // numbers each new inode from a counter.
        real = RealKernelIO(paths: paths, asSysfs: true)
        self.kernel = kernel
        tree = SysfsTree(paths: paths, mirrorsKernel: true)
        try level()
    }

    var paths: HostPaths { real.paths }

    /// Brings the tree level with the kernel, between the markers.
    func level() throws(IOFailure) {
        KernelMarker.begin()
        defer { KernelMarker.end() }
        try tree.write(kernel.inspect { $0 })
    }

    /// The path as the simulated kernel knows it.
    private func simulated(_ path: String) -> String { String(path.dropFirst(root.count)) }

    /// The real operation first (the agent's system calls), then the kernel's, which
    /// decides the outcome; then the tree follows the kernel.
    private func mirrored<T>(
        _ real: () throws(IOFailure) -> Void, _ simulated: () throws(IOFailure) -> T
    ) throws(IOFailure) -> T {
        try? real()
        KernelMarker.begin()
        let result = Result { () throws(IOFailure) in try simulated() }
        KernelMarker.end()
        try level()
        return try result.get()
    }

    func write(_ path: String, _ value: String) throws(IOFailure) {
        try mirrored({ () throws(IOFailure) in try real.write(path, value) }) { () throws(IOFailure) in
            try kernel.write(simulated(path), value)
        }
    }
    func write(beneath base: String, _ relative: String, _ value: String) throws(IOFailure) {
        try mirrored({ () throws(IOFailure) in try real.write(beneath: base, relative, value) }) {
            () throws(IOFailure) in try kernel.write(beneath: simulated(base), relative, value)
        }
    }
    func writeBytes(_ path: String, offset: Int, _ bytes: [UInt8]) throws(IOFailure) {
        try mirrored({ () throws(IOFailure) in try real.writeBytes(path, offset: offset, bytes) }) {
            () throws(IOFailure) in try kernel.writeBytes(simulated(path), offset: offset, bytes)
        }
    }
    func setNodeAccess(
        _ path: String, uid: UInt32?, gid: UInt32?, mode: UInt16?, device: UInt64?
    ) throws(IOFailure) {
        try mirrored({ () throws(IOFailure) in
            try real.setNodeAccess(path, uid: uid, gid: gid, mode: mode, device: device)
        }) { () throws(IOFailure) in
            try kernel.setNodeAccess(simulated(path), uid: uid, gid: gid, mode: mode, device: device)
        }
    }
    func grantNodeAccess(_ path: String, users: [UInt32], groups: [UInt32]) throws(IOFailure) -> IOMMUGrants {
        try mirrored({ () throws(IOFailure) in _ = try real.grantNodeAccess(path, users: users, groups: groups) }) {
            () throws(IOFailure) in try kernel.grantNodeAccess(simulated(path), users: users, groups: groups)
        }
    }
    func revokeNodeAccess(_ path: String, users: [UInt32], groups: [UInt32]) throws(IOFailure) {
        try mirrored({ () throws(IOFailure) in try real.revokeNodeAccess(path, users: users, groups: groups) }) {
            () throws(IOFailure) in try kernel.revokeNodeAccess(simulated(path), users: users, groups: groups)
        }
    }
    /// modprobe is refused under a test root: only the kernel loads it.
    func loadModule(_ name: String) throws(IOFailure) {
        try mirrored({ () throws(IOFailure) in }) { () throws(IOFailure) in try kernel.loadModule(name) }
    }

    func read(_ path: String) throws(IOFailure) -> String { try real.read(path) }
    func readLink(_ path: String) throws(IOFailure) -> String { try real.readLink(path) }
    func list(_ path: String) throws(IOFailure) -> [String] { try real.list(path) }
    func listing(_ path: String) throws(IOFailure) -> DirectoryEntries { try real.listing(path) }
    func exists(_ path: String) -> Bool { real.exists(path) }
    func nodeState(_ path: String) throws(IOFailure) -> NodeState? { try real.nodeState(path) }
    func nodeAccess(_ path: String) throws(IOFailure) -> IOMMUAccess? { try real.nodeAccess(path) }
    func inode(_ path: String) throws(IOFailure) -> UInt64 { try real.inode(path) }
    func resolve(_ path: String) throws(IOFailure) -> String { try real.resolve(path) }
    func readBytes(_ path: String, offset: Int, count: Int) throws(IOFailure) -> [UInt8] {
        try real.readBytes(path, offset: offset, count: count)
    }
    func readDirectory(_ directory: String, _ request: DirectoryRequest) throws(IOFailure) -> DirectoryReading {
        try real.readDirectory(directory, request)
    }
    func entry(beneath base: String, _ relative: String) throws(IOFailure) -> EntryKind? {
        try real.entry(beneath: base, relative)
    }
    func list(beneath base: String, _ relative: String) throws(IOFailure) -> [String] {
        try real.list(beneath: base, relative)
    }
    func read(beneath base: String, _ relative: String) throws(IOFailure) -> String {
        try real.read(beneath: base, relative)
    }
    func deviceNumber(_ path: String) -> UInt64? { real.deviceNumber(path) }
    func openers(of nodes: Set<UInt64>, devices: Set<PCIAddress>) -> [NodeOpener] {
        real.openers(of: nodes, devices: devices)
    }
    func tryExclusiveOpen(_ path: String) -> Errno? { real.tryExclusiveOpen(path) }
}

/// Marks in a system call trace (`strace -f`): a write to descriptor -1 fails at once and
/// shows its text. The bench's windows and the mirror's own work are told apart by them.
enum KernelMarker {
    static let beginText = "hotplug-agent-bench: kernel <"
    static let endText = "hotplug-agent-bench: kernel >"

    static func begin() { mark(beginText) }
    static func end() { mark(endText) }

    static func mark(_ text: String) {
        _ = text.withCString { Glibc.write(-1, $0, strlen($0)) }
    }
}
