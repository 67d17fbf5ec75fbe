import Glibc

/// Who holds what open, asked of the kernel: `/proc/*/fd/*` for the processes holding a
/// device node, and an `O_EXCL` open for block devices a filesystem, swap or a stacking
/// driver holds (the kernel answers EBUSY whatever the filesystem: btrfs and ZFS too).
extension RealKernelIO {
    func deviceNumber(_ path: String) -> UInt64? {
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFCHR else { return nil }
        return UInt64(st.st_rdev)
    }

    /// Every process's open descriptors, `stat()`ed through their `/proc` links (which
    /// follows them to the node itself); the agent's own are left out. A process that
    /// ends meanwhile, or whose descriptors cannot be read, is passed over.
    func openers(of devices: Set<UInt64>) -> [NodeOpener] {
        guard !devices.isEmpty else { return [] }
        let proc = paths.under("/proc")
        let me = getpid()
        var found: [NodeOpener] = []
        for entry in (try? list(proc)) ?? [] {
            guard let pid = Int32(entry), pid != me else { continue }
            let fdDirectory = "\(proc)/\(pid)/fd"
            for fd in (try? list(fdDirectory)) ?? [] {
                var st = stat()
                guard stat("\(fdDirectory)/\(fd)", &st) == 0, st.st_mode & S_IFMT == S_IFCHR,
                      devices.contains(UInt64(st.st_rdev)) else { continue }
                let command = (try? read("\(proc)/\(pid)/comm")).map(firstLine) ?? "?"
                found.append(NodeOpener(device: UInt64(st.st_rdev), pid: pid, command: command))
            }
        }
        return found.sorted { ($0.pid, $0.device) < ($1.pid, $1.device) }
    }

    func tryExclusiveOpen(_ path: String) -> Errno? {
        // Only a block device: O_EXCL means "exclusive" only there.
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFBLK else { return nil }
        let fd = open(path, O_RDONLY | O_EXCL | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return .current }
        close(fd)
        return nil
    }
}
