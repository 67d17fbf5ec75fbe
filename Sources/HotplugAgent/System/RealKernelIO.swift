import CLinux
import HostInterface
import Glibc
import Policy

// Linux values, hidden behind _GNU_SOURCE in glibc's headers; the same on every architecture.
// For the whole file layer (RealKernelIO and its extensions).
package let O_PATH: Int32 = 0o10000000
package let AT_EMPTY_PATH: Int32 = 0x1000
package let AT_SYMLINK_NOFOLLOW: Int32 = 0x100

/// The real lowest layer: system calls on paths under the root, and `modprobe`.
///
/// Under umockdev's preload library the same calls reach its test bed instead of the real
/// `/sys`; nothing here knows the difference.
package final class RealKernelIO: KernelIO {
    package let paths: HostPaths
    /// The modprobe to run (`HOTPLUG_AGENT_MODPROBE` names another); nil under a root other
    /// than `/`, where no module is ever loaded: a module goes into this host's kernel,
    /// outside any tree.
    package let modprobe: String?
    /// The file system (`st_dev`) the PCI devices lie on, where it is sysfs: a device
    /// directory read there tells its device apart by its inode (`DirectoryReading`), one on
    /// any other file system does not, wherever a link leads the look.
    package let sysfs: UInt64?
    /// Under `--root`, the root every change is opened below (`openToChange`); nil on `/`.
    let heldRoot: HeldRoot?

    /// `asSysfs`: take the root's file system for sysfs (a tree laid out there that only ever
    /// gets directories made new, on tmpfs, which numbers each new inode from a counter).
    package init(paths: HostPaths, modprobe: String? = nil, asSysfs: Bool = false) {
        self.paths = paths
        sysfs = asSysfs ? Self.fileSystem(of: paths.root) : Self.sysfs(at: paths.pciDevices)
        heldRoot = HeldRoot(paths.root)
        if paths.root != "/" {
            self.modprobe = nil
        } else {
            self.modprobe =
                modprobe ?? ["/usr/sbin/modprobe", "/sbin/modprobe"].first { access($0, X_OK) == 0 } ?? "modprobe"
        }
    }

    /// The file system (`st_dev`) of the directory `path` leads to, where it is sysfs
    /// (`SYSFS_MAGIC`): both asked of one descriptor, so a link swapped between cannot
    /// answer the one question with sysfs and the other with a tree of files.
    static func sysfs(at path: String) -> UInt64? {
        let fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = statfs(), status = stat()
        guard fstatfs(fd, &info) == 0, info.f_type == 0x6265_6572, fstat(fd, &status) == 0 else { return nil }
        return UInt64(status.st_dev)
    }

    /// The file system (`st_dev`) `path` leads to; nil where it cannot be told.
    static func fileSystem(of path: String) -> UInt64? {
        var status = stat()
        return stat(path, &status) == 0 ? UInt64(status.st_dev) : nil
    }

    /// O_NONBLOCK: nothing read may hang the agent (a FIFO where a file should be); sysfs
    /// and /proc files ignore it.
    package func read(_ path: String) throws(IOFailure) -> String {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw IOFailure(.read, path, errno: .current) }
        defer { close(fd) }
        return try readAll(fd, path: path)
    }

    package func write(_ path: String, _ value: String) throws(IOFailure) {
        // O_TRUNC as the shell's `>` does: sysfs ignores it, regular files (test beds) need it.
        let fd = openToChange(path, O_WRONLY | O_TRUNC)
        guard fd >= 0 else { throw IOFailure(.write, path, value: value, errno: .current) }
        defer { close(fd) }
        try writeAll(fd, value, path: path)
    }

    /// Everything `fd` reads; more than 1 MiB (no attribute is larger) is EFBIG, never a
    /// value cut short. See `readAll(from:)` for `shortReadEnds`.
    package func readAll(_ fd: Int32, path: String, shortReadEnds: Bool = false) throws(IOFailure) -> String {
        do throws(Errno) {
            let limit = 1 << 20
            let bytes = try HostInterface.readAll(from: fd, limit: limit, shortReadEnds: shortReadEnds)
            guard bytes.count <= limit else { throw Errno.EFBIG }
            return String(decoding: bytes, as: UTF8.self)
        } catch {
            throw IOFailure(.read, path, errno: error)
        }
    }

    /// `value` in one write(): sysfs takes each write as one store.
    package func writeAll(_ fd: Int32, _ value: String, path: String) throws(IOFailure) {
        let bytes = Array(value.utf8)
        while true {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 && Errno.current == .EINTR { continue }
            guard written == bytes.count else {
                throw IOFailure(.write, path, value: value, errno: written < 0 ? .current : .EIO)
            }
            return
        }
    }

    package func readLink(_ path: String) throws(IOFailure) -> String {
        do throws(Errno) { return try readSymbolicLink(path) } catch { throw Self.linkFailure(.readlink, path, error) }
    }

    /// A link or path that could not be read as text; EILSEQ says why in words: it names a
    /// file in bytes that are not UTF-8.
    static func linkFailure(_ operation: IOFailure.Operation, _ path: String, _ error: Errno) -> IOFailure {
        let detail = error == .EILSEQ ? "it leads to a name that is not UTF-8" : nil
        return IOFailure(operation, path, errno: error, detail: detail)
    }

    package func list(_ path: String) throws(IOFailure) -> [String] { try listing(path).names }

    package func listing(_ path: String) throws(IOFailure) -> DirectoryEntries {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0, let entries = DirectoryEntries(closing: fd) else {
            throw IOFailure(.list, path, errno: .current)
        }
        return entries
    }

    package func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    package func nodeState(_ path: String) throws(IOFailure) -> NodeState? {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if Errno.current == .ENOENT { return nil }
            throw IOFailure(.stat, path, errno: .current)
        }
        return NodeState(
            uid: st.st_uid, gid: st.st_gid, mode: UInt16(st.st_mode & 0o7777),
            isCharacterDevice: st.st_mode & S_IFMT == S_IFCHR)
    }

    /// Opens the node with O_PATH|O_NOFOLLOW, so a planted symlink is never followed and the
    /// checks and changes all apply to the same inode; refuses anything but a character
    /// device; then fchownat(AT_EMPTY_PATH) and chmod through /proc/self/fd.
    package func setNodeAccess(
        _ path: String, uid: UInt32?, gid: UInt32?, mode: UInt16?, device: UInt64?
    ) throws(IOFailure) {
        let fd = openToChange(path, O_PATH | O_NOFOLLOW)
        guard fd >= 0 else { throw IOFailure(.open, path, errno: .current) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw IOFailure(.stat, path, errno: .current) }
        if st.st_mode & S_IFMT == S_IFLNK {
            throw IOFailure(.open, path, errno: .ELOOP, detail: "a symlink, not followed")
        }
        guard st.st_mode & S_IFMT == S_IFCHR else {
            throw IOFailure(.open, path, errno: .EINVAL, detail: "not a character device, left alone")
        }
        if let device, UInt64(st.st_rdev) != device {
            throw IOFailure(.open, path, errno: .ESTALE, detail: "the node is another device's now, left alone")
        }
        if uid != nil || gid != nil {
            let owner = uid.map { uid_t($0) } ?? uid_t.max
            let group = gid.map { gid_t($0) } ?? gid_t.max
            guard fchownat(fd, "", owner, group, AT_EMPTY_PATH) == 0 else {
                throw IOFailure(
                    .chown, path, value: "\(uid.map(String.init) ?? "-"):\(gid.map(String.init) ?? "-")",
                    errno: .current)
            }
        }
        if let mode {
            guard chmod("/proc/self/fd/\(fd)", mode_t(mode)) == 0 else {
                throw IOFailure(.chmod, path, value: octal(mode), errno: .current)
            }
        }
    }

    package func inode(_ path: String) throws(IOFailure) -> UInt64 {
        var st = stat()
        guard stat(path, &st) == 0 else { throw IOFailure(.stat, path, errno: .current) }
        return UInt64(st.st_ino)
    }

    /// The kernel's own name for what `path` leads to: the path of an O_PATH descriptor
    /// (`/proc/self/fd/N`), three system calls where realpath() reads every component
    /// as a link (a dozen below /sys/devices). Where /proc does not answer with a path (not
    /// mounted, masked, or the entry gone meanwhile), realpath() does.
    package func resolve(_ path: String) throws(IOFailure) -> String {
        let fd = open(path, O_PATH | O_CLOEXEC)
        guard fd >= 0 else { throw IOFailure(.realpath, path, errno: .current) }
        defer { close(fd) }
        do throws(Errno) {
            let named = try readSymbolicLink("/proc/self/fd/\(fd)")
            if named.isAbsolutePath && !named.hasSuffix(" (deleted)") { return named }
        } catch where error == .EILSEQ {
            throw Self.linkFailure(.realpath, path, error)
        } catch {}
        guard let resolved = realpath(path, nil) else { throw IOFailure(.realpath, path, errno: .current) }
        defer { free(resolved) }
        let bytes = UnsafeRawBufferPointer(start: resolved, count: strlen(resolved))
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Self.linkFailure(.realpath, path, .EILSEQ)
        }
        return text
    }

    package func readBytes(_ path: String, offset: Int, count: Int) throws(IOFailure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw IOFailure(.read, path, errno: .current) }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = bytes.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done))
            }
            if got < 0 {
                if Errno.current == .EINTR { continue }
                throw IOFailure(.read, path, errno: .current)
            }
            if got == 0 { break }
            done += got
        }
        return Array(bytes[..<done])
    }

    package func writeBytes(_ path: String, offset: Int, _ bytes: [UInt8]) throws(IOFailure) {
        let value = bytes.map { hex($0, width: 2) }.joined(separator: " ") + " at \(hex(offset, width: 3))"
        let fd = openToChange(path, O_WRONLY)
        guard fd >= 0 else { throw IOFailure(.write, path, value: value, errno: .current) }
        defer { close(fd) }
        while true {
            let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
            if written < 0 && Errno.current == .EINTR { continue }
            guard written == bytes.count else {
                throw IOFailure(.write, path, value: value, errno: written < 0 ? .current : .EIO)
            }
            return
        }
    }

    package func loadModule(_ name: String) throws(IOFailure) {
        guard let modprobe else {
            throw IOFailure(
                .modprobe, name, errno: .EPERM, detail: "module loading is off under a test root (\(paths.root))")
        }
        // Policy names are checked when parsed; checked again here, where a name that
        // started with `-` would be an option, and `--` ends modprobe's options anyway.
        guard DriverKind.isValidName(name) else {
            throw IOFailure(.modprobe, name, errno: .EINVAL, detail: "not a module name")
        }
        let result: Subprocess.Result
        do {
            result = try Subprocess.run(modprobe, arguments: ["--", name])
        } catch {
            throw IOFailure(.modprobe, name, errno: error, detail: "cannot run \(modprobe)")
        }
        guard result.status == 0 else {
            let output = result.output.split(separator: "\n").last.map(String.init) ?? "exit status \(result.status)"
            throw IOFailure(.modprobe, name, errno: .ENOENT, detail: output)
        }
    }
}
