import HostInterface
import Glibc
import Policy

/// Who holds what open, asked of the kernel: `/proc` for the processes holding a VFIO
/// device, and an `O_EXCL` open for block devices a filesystem, swap or a stacking driver
/// holds (the kernel answers EBUSY whatever the filesystem: btrfs and ZFS too).
extension RealKernelIO {
    package func deviceNumber(_ path: String) -> UInt64? {
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFCHR else { return nil }
        return UInt64(st.st_rdev)
    }

    /// Every process but the agent, each of its threads' descriptor tables (a thread made
    /// without `CLONE_FILES` has its own, which `/proc/<pid>/fd` does not show), and its
    /// mappings: a node is known by `st_rdev` (stat through the `/proc` link follows it to
    /// the node), a VFIO device descriptor by its anonymous inode's name and the device
    /// `fdinfo` names where the kernel does, a mapping of a region by that name in `maps`.
    /// A process that ends meanwhile, or whose entries cannot be read, is passed over.
    package func openers(of nodes: Set<UInt64>, devices: Set<PCIAddress>) -> [NodeOpener] {
        guard !nodes.isEmpty || !devices.isEmpty else { return [] }
        let proc = paths.under("/proc")
        let me = getpid()
        var found: [NodeOpener] = []
        for entry in (try? list(proc)) ?? [] {
            guard let pid = Int32(entry), pid != me else { continue }
            var holds: [NodeOpener.Hold] = []
            func note(_ hold: NodeOpener.Hold) { if !holds.contains(hold) { holds.append(hold) } }
            let tasks = (try? list("\(proc)/\(pid)/task")) ?? [entry]
            for task in tasks {
                let base = "\(proc)/\(pid)/task/\(task)"
                for fd in (try? list("\(base)/fd")) ?? [] {
                    let hold = vfioHold(
                        fd: "\(base)/fd/\(fd)", info: "\(base)/fdinfo/\(fd)", nodes: nodes, devices: devices)
                    if let hold { note(hold) }
                }
            }
            if !devices.isEmpty { mappedHolds(maps: "\(proc)/\(pid)/maps", nodes: nodes).forEach(note) }
            guard !holds.isEmpty else { continue }
            let command = (try? read("\(proc)/\(pid)/comm")).map(firstLine) ?? "?"
            found += holds.map { NodeOpener($0, pid: pid, command: command) }
        }
        return found.sorted { $0.pid < $1.pid }
    }

    /// What the descriptor at `/proc/…/fd/N` holds of these nodes or devices, if anything.
    private func vfioHold(fd: String, info: String, nodes: Set<UInt64>, devices: Set<PCIAddress>) -> NodeOpener.Hold? {
        var st = stat()
        if stat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFCHR, nodes.contains(UInt64(st.st_rdev)) {
            return .node(UInt64(st.st_rdev))
        }
        guard !devices.isEmpty, (try? readLink(fd)) == "anon_inode:[vfio-device]" else { return nil }
        // 6.18 and later: "vfio-device-syspath: /sys/devices/pci0000:00/0000:00:04.0".
        guard let text = try? read(info),
            let line = text.split(byte: UInt8(ascii: "\n")).first(where: { $0.hasPrefix("vfio-device-syspath:") })
        else {
            return .descriptor(nil)
        }
        guard let address = lastComponent(String(line)).flatMap(PCIAddress.init), devices.contains(address) else {
            return nil
        }
        return .descriptor(address)
    }

    /// Mappings in `/proc/<pid>/maps` of a VFIO device's regions (through its descriptor,
    /// or through one of these nodes), which hold the device after every descriptor closed.
    private func mappedHolds(maps: String, nodes: Set<UInt64>) -> [NodeOpener.Hold] {
        guard let text = try? read(maps) else { return [] }
        var holds: [NodeOpener.Hold] = []
        // Lines split on the newline byte: as characters, a mapped file named with a `\r` at
        // its end would join its line to the next, and hide a mapping of a VFIO node there.
        for line in text.split(byte: UInt8(ascii: "\n")) {
            if line.hasSuffix("anon_inode:[vfio-device]") {
                if !holds.contains(.mapping) { holds.append(.mapping) }
            } else if let slash = line.utf8.firstIndex(of: UInt8(ascii: "/")), line[slash...].hasPrefix("/dev/vfio/") {
                let node = paths.under(String(line[slash...]))
                if let number = deviceNumber(node), nodes.contains(number), !holds.contains(.node(number)) {
                    holds.append(.node(number))
                }
            }
        }
        return holds
    }

    package func tryExclusiveOpen(_ path: String) -> Errno? {
        // Only a block device: O_EXCL means "exclusive" only there.
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFBLK else { return nil }
        let fd = openToChange(path, O_RDONLY | O_EXCL | O_NONBLOCK)
        guard fd >= 0 else { return .current }
        close(fd)
        return nil
    }
}
