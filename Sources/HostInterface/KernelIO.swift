import Policy

/// The lowest layer: files under `/sys` and `/dev`, and module loading. The real host does
/// system calls; the simulated host answers from its model of the kernel. Everything above
/// this protocol is the same code on both.
package protocol KernelIO: AnyObject, Sendable {
    /// The whole contents of a file.
    func read(_ path: String) throws(IOFailure) -> String
    /// One write() of `value`, as `echo -n` would: sysfs takes each write as one store.
    func write(_ path: String, _ value: String) throws(IOFailure)
    /// A link's target; EILSEQ where it is not UTF-8 (decoded, it would name another file).
    func readLink(_ path: String) throws(IOFailure) -> String
    /// Directory entries without `.` and `..`, in no particular order.
    func list(_ path: String) throws(IOFailure) -> [String]
    /// The same, with the names that are not UTF-8 apart (shown escaped, `\xff`): where one
    /// must not be passed over (a network interface an admin named so).
    func listing(_ path: String) throws(IOFailure) -> DirectoryEntries
    func exists(_ path: String) -> Bool
    /// lstat of a device node; nil when it does not exist.
    func nodeState(_ path: String) throws(IOFailure) -> NodeState?
    /// Owner, group and mode of a character device node, never following a symlink; with
    /// `device`, only while the node is still that device number (a device's iommufd node is
    /// renumbered when another takes its number).
    func setNodeAccess(_ path: String, uid: UInt32?, gid: UInt32?, mode: UInt16?, device: UInt64?) throws(IOFailure)
    /// Who may open a character device node read-write: its mode and POSIX ACL.
    func nodeAccess(_ path: String) throws(IOFailure) -> IOMMUAccess?
    /// Adds POSIX ACL entries giving these users and groups read and write on a character
    /// device node (never following a symlink), taking nothing away; returns the users and
    /// groups whose entries it made (not those already named).
    func grantNodeAccess(
        _ path: String, users: [UInt32], groups: [UInt32]
    ) throws(IOFailure)
        -> IOMMUGrants
    /// Removes the named ACL entries of these users and groups from a character device node.
    func revokeNodeAccess(_ path: String, users: [UInt32], groups: [UInt32]) throws(IOFailure)
    /// Loads the module that provides a PCI driver.
    func loadModule(_ name: String) throws(IOFailure)
    /// The inode number of what the path leads to (stat). sysfs gives each device it adds
    /// a new one, so it tells a device from another that took its address.
    func inode(_ path: String) throws(IOFailure) -> UInt64
    /// The path with every symlink followed (realpath); EILSEQ where that is not UTF-8.
    func resolve(_ path: String) throws(IOFailure) -> String
    /// Up to `count` bytes at `offset` (pread): the `config` file.
    func readBytes(_ path: String, offset: Int, count: Int) throws(IOFailure) -> [UInt8]
    /// `bytes` at `offset` in one pwrite.
    func writeBytes(_ path: String, offset: Int, _ bytes: [UInt8]) throws(IOFailure)
    /// One directory in one look through one descriptor (see `DirectoryRequest`): a device's
    /// own entries without a path built and walked for each. Means what
    /// `DirectoryReading.assembled` makes of the single-path operations: the directory
    /// missing throws, a name missing is left out.
    func readDirectory(_ directory: String, _ request: DirectoryRequest) throws(IOFailure) -> DirectoryReading

    // Below a device directory, for `sysfs` entries: `relative` is resolved without leaving
    // `base` and without following any symlink on the way (openat2 with RESOLVE_BENEATH and
    // RESOLVE_NO_SYMLINKS, or one component at a time with O_NOFOLLOW). A path through a
    // link fails with ELOOP or EXDEV.

    /// What lstat shows at `relative` below `base`; nil when nothing is there.
    func entry(beneath base: String, _ relative: String) throws(IOFailure) -> EntryKind?
    func list(beneath base: String, _ relative: String) throws(IOFailure) -> [String]
    func read(beneath base: String, _ relative: String) throws(IOFailure) -> String
    func write(beneath base: String, _ relative: String, _ value: String) throws(IOFailure)

    // Who uses what: answers for the host's own safety, never written through.

    /// The device number (`st_rdev`) of the character device at `path`; nil when there is
    /// none there.
    func deviceNumber(_ path: String) -> UInt64?
    /// The processes holding any of these character device nodes open, or holding one of
    /// `devices` through a VFIO device descriptor or a mapping of its regions, in any of
    /// their threads (`/proc/*/task/*/fd`, `fdinfo`, `maps`). A descriptor or mapping whose
    /// device the kernel does not name is returned with no address: it may be any.
    func openers(of nodes: Set<UInt64>, devices: Set<PCIAddress>) -> [NodeOpener]
    /// Opens a block device `O_EXCL` and closes it again: nil when that works, else the
    /// errno (EBUSY: a mounted filesystem, swap, md, dm, bcache or ZFS holds it).
    func tryExclusiveOpen(_ path: String) -> Errno?
}

extension KernelIO {
    package func setNodeAccess(_ path: String, uid: UInt32?, gid: UInt32?, mode: UInt16?) throws(IOFailure) {
        try setNodeAccess(path, uid: uid, gid: gid, mode: mode, device: nil)
    }
}

/// `major:minor` as the kernel encodes a device number (`makedev`).
package func deviceNumber(major: UInt64, minor: UInt64) -> UInt64 {
    ((major & 0xfff) << 8) | ((major & ~0xfff) << 32) | (minor & 0xff) | ((minor & ~0xff) << 12)
}

/// A `dev` attribute (`511:3`) as a device number.
package func deviceNumber(_ text: String) -> UInt64? {
    let parts = firstLine(text).split(separator: ":")
    guard parts.count == 2, let major = UInt64(parts[0]), let minor = UInt64(parts[1]) else { return nil }
    return deviceNumber(major: major, minor: minor)
}
