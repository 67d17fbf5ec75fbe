import HostInterface
import Policy

/// Whether the host uses a PCI function, asked of the kernel: a network interface of it
/// that is up, or a block device of it (or a partition) that is mounted, swapping, held
/// by a stacking driver, or open exclusively by anyone.
///
/// A mounted filesystem is found by its device number (`/proc/self/mountinfo` field 3) or
/// by its source (field 10): btrfs, bcachefs and ZFS show an anonymous `0:NN` number, and
/// ZFS names its pool, not a device. What no table shows (a ZFS vdev, a member of a
/// multi-device btrfs, a device another process opened `O_EXCL`) the kernel still
/// answers: an `O_EXCL` open fails with EBUSY.
///
/// With NVMe native multipath a namespace's block device lives below
/// `/sys/devices/virtual/nvme-subsystem/nvme-subsysN/`, not below the function: it is
/// the function's when one of the subsystem's controllers (`nvme-subsysN/nvmeX` links)
/// is below the function.
package struct HostUse {
    package let io: any KernelIO
    package let paths: HostPaths
    package let vfio: VFIODrivers

    /// Why the host uses the device, one reason each; empty when it does not. Not knowing
    /// is not "free": a device whose place in sysfs cannot be told while interfaces or
    /// block devices are there to compare is one the host may use.
    /// `device` is the device as the look that asks read it, where there was one: its PF,
    /// class and driver are not read again.
    package func inUse(_ address: PCIAddress, as device: PCIDevice? = nil) -> [String] {
        reasons(address, look([address])[0], as: device)
    }

    /// How the host uses each VF of the PF `address` (its `virtfnN` links), one line each:
    /// changing the PF's VF count destroys them all. One look for all of them: each class
    /// listed and each entry read once, not once per VF.
    /// A VF whose `virtfnN` link cannot be read is one that cannot be checked: a reason of
    /// its own (see `KernelIO.virtualFunctions`).
    package func vfsInUse(of address: PCIAddress) -> [String] {
        let (listed, unreadable) = io.virtualFunctions(of: address, paths: paths)
        let vfs = listed.sorted()
        return unreadable.map { "a VF cannot be checked: \($0)" }
            + zip(vfs, look(vfs)).flatMap { vf, use in reasons(vf, use, as: nil).map { "VF \(vf): \($0)" } }
    }

    /// The device's network interfaces and block devices, found by where their class links
    /// really lead; mounts and swaps from /proc under the root.
    package func hostUse(
        _ address: PCIAddress
    ) -> (interfaces: [HostDescription.Interface], disks: [HostDescription.Disk]) {
        let use = look([address])[0]
        return (use.interfaces, use.disks)
    }

    /// What one look found of one device, and what it could not check.
    struct Use {
        var interfaces: [HostDescription.Interface] = []
        var disks: [HostDescription.Disk] = []
        var unchecked: [String] = []
    }

    private func reasons(_ address: PCIAddress, _ use: Use, as device: PCIDevice?) -> [String] {
        var uses = use.interfaces.filter(\.up).map { "network interface \($0.name) is up" }
        uses += use.unchecked
        if use.interfaces.isEmpty, let moved = interfaceElsewhere(address, as: device) { uses.append(moved) }
        for disk in use.disks {
            if let point = disk.mounted { uses.append("block device \(disk.name) is mounted on \(point)") }
            if disk.swap == true { uses.append("block device \(disk.name) is used as swap") }
            uses += (disk.holders ?? []).map { "block device \(disk.name) is held by \($0)" }
            // What the O_EXCL probe says, when nothing above explains the device already.
            guard disk.mounted == nil && disk.swap != true && disk.holders == nil else { continue }
            if disk.exclusive == true {
                uses.append(
                    "block device \(disk.name) is open exclusively (EBUSY): a filesystem, ZFS, md, dm or another "
                        + "program holds it"
                )
            }
            // Not knowing is not "free": a ZFS vdev shows only through this answer.
            if let denied = disk.probeDenied {
                uses.append(
                    "block device \(disk.name) cannot be checked for exclusive use (open: \(denied)): it may be a ZFS "
                        + "vdev"
                )
            }
        }
        return uses
    }

    /// A VF bound to a network driver that shows no interface here: `net/` below a device
    /// shows only the interfaces of the network namespace that mounted this sysfs, so its
    /// interface was moved into another one (a container's, by SR-IOV CNI), where it is used.
    /// A driver link that cannot be read is not "no driver": whether the interface is
    /// elsewhere cannot be told then, and that is the reason.
    private func interfaceElsewhere(_ address: PCIAddress, as device: PCIDevice?) -> String? {
        guard device.map({ $0.physfn != nil }) ?? io.exists(paths.attribute(address, "physfn")),
            Self.isNetworkController(device.map(\.classCode) ?? classCode(of: address))
        else { return nil }
        let driver: String?
        if let device {
            driver = device.driver
        } else {
            do throws(IOFailure) {
                driver = lastComponent(try io.readLink(paths.attribute(address, "driver")))
            } catch where error.errno == .ENOENT {
                driver = nil
            } catch {
                return "whether its interface is in another network namespace cannot be checked: \(error)"
            }
        }
        guard let driver, !vfio.contains(driver), driver != "pci-stub" else { return nil }
        return "it is bound to \(driver) and shows no network interface here: "
            + "its interface is in another network namespace (a container's)"
    }

    /// A network controller's class (`0x02xxxx`); a class that could not be read may be one.
    private static func isNetworkController(_ classCode: UInt32?) -> Bool { classCode.map { $0 >> 16 == 0x02 } ?? true }

    /// The class its `class` file shows (`0x020000`); nil where it cannot be read as one.
    private func classCode(of address: PCIAddress) -> UInt32? {
        (try? io.read(paths.attribute(address, "class"))).map(firstLine).flatMap { text in
            text.hasPrefix("0x") ? UInt32(text.dropFirst(2), radix: 16) : nil
        }
    }

    /// `hostUse` of each of `addresses`, and what could not be checked, one reason each.
    /// Each class is listed, and each entry's place, flags, number and holders read, once
    /// for all of them. Not knowing is not "free": whatever fails to be read (a device's
    /// own place while something is there to compare it with, a class listing, an entry
    /// that cannot be followed or leads out of the root, an entry named in bytes that are
    /// not UTF-8, an interface's flags, a disk's holders or a number it has, the mount and
    /// swap tables, a mount table that lists nothing) is a reason: for every device where
    /// it is the class's, for those it is below where it is an entry's. Only what the
    /// kernel does not have is none: a class or `/proc/swaps` it was built without, an
    /// entry that left since it was listed.
    private func look(_ addresses: [PCIAddress]) -> [Use] {
        guard !addresses.isEmpty else { return [] }
        let shared = Unchecked()
        let places = addresses.map { Places(self, $0) }
        var uses = [Use](repeating: Use(), count: addresses.count)
        /// Notes of one entry, for the devices it is below.
        func owned(by owners: [Int], _ body: (Unchecked) -> Void) {
            let notes = Unchecked()
            body(notes)
            for index in owners { uses[index].unchecked += notes.reasons }
        }
        let net = entries(of: paths.classNet, shared)
        shared.undecodable(net.undecodable, "network interface")
        for name in net.names.sorted() {
            let entry = paths.classNet + "/" + name
            guard var place = place(of: entry, in: "class/net", shared) else { continue }
            let owners = places.indices.filter { places[$0].below(&place) }
            guard !owners.isEmpty else { continue }
            owned(by: owners) { notes in
                guard let text = text(entry + "/flags", of: entry, notes) else { return }
                let flags = firstLine(text)
                let value = flags.hasPrefix("0x") ? UInt32(flags.dropFirst(2), radix: 16) : UInt32(flags)
                guard let value else {
                    notes.note("network interface \(name) has flags \(quoted(flags)): whether it is up cannot be told")
                    return
                }
                for index in owners {
                    uses[index].interfaces.append(HostDescription.Interface(name: name, up: value & 1 != 0))
                }
            }
        }
        let disks = blockDevices(places, shared)
        if !disks.isEmpty {
            let owners = Array(Set(disks.flatMap(\.owners))).sorted()
            var mounts = Mounts(mountInfo: "")
            var swaps: [Substring] = []
            owned(by: owners) { notes in
                var mountInfo = ""
                do throws(IOFailure) { mountInfo = try io.read(paths.mountInfo) } catch { notes.note(error) }
                mounts = Mounts(mountInfo: mountInfo)
                // There is always a root mount: a table without one was not the kernel's.
                if mounts.entries.isEmpty { notes.note("\(paths.mountInfo) lists no mounts") }
                swaps = (text(paths.swaps, of: nil, notes) ?? "").split(byte: UInt8(ascii: "\n")).dropFirst().compactMap
                {
                    $0.split(byte: UInt8(ascii: " ")).first
                }
            }
            for (name, owners) in disks {
                owned(by: owners) { notes in
                    let disk = self.disk(name, mounts: mounts, swaps: swaps, notes)
                    for index in owners { uses[index].disks.append(disk) }
                }
            }
        }
        for index in uses.indices {
            uses[index].unchecked = shared.reasons + places[index].unchecked.reasons + uses[index].unchecked
        }
        return uses
    }

    /// One block device as the in-use check needs it.
    private func disk(
        _ name: String, mounts: Mounts, swaps: [Substring], _ unchecked: Unchecked
    ) -> HostDescription.Disk {
        let entry = paths.classBlock + "/" + name
        // A hidden disk (an NVMe multipath path, `nvme0c0n1`) has no number, no `dev`,
        // and no node to mount or open: found by its name alone. One that is there is the
        // kernel's `MAJOR:MINOR`, as mountinfo prints it; any other text cannot be matched.
        var number = ""
        if let text = text(entry + "/dev", of: nil, unchecked) {
            number = firstLine(text)
            if !Self.isDeviceNumber(number) {
                unchecked.note("block device \(name) has number \(quoted(number)), not MAJOR:MINOR")
            }
        }
        // Every disk has holders/, hidden ones too: missing while the entry is there (a
        // link to nothing, taken as this device's by its text), the disk cannot be told.
        // A holder named in bytes that are not UTF-8 holds it as much (shown escaped).
        let listed = entries(of: entry + "/holders", in: entry, unchecked)
        let holders = (listed.names + listed.undecodable).sorted()
        let probe = io.tryExclusiveOpen(paths.under("/dev/\(name)"))
        // EPERM/EACCES: the node may not be opened here (a device cgroup, an LSM).
        let denied = probe == .EPERM || probe == .EACCES ? probe?.name : nil
        return HostDescription.Disk(
            name: name, dev: number, mounted: mounts.mountPoint(number: number, node: "/dev/\(name)"),
            swap: swaps.contains { $0 == "/dev/\(name)" } ? true : nil,
            holders: holders.isEmpty ? nil : holders, exclusive: probe == .EBUSY ? true : nil,
            probeDenied: denied)
    }

    /// `259:1`: decimal numbers as the kernel prints them (`%u:%u`, no sign, no leading zero).
    static func isDeviceNumber(_ text: String) -> Bool {
        let parts = text.split(byte: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        return parts.count == 2
            && parts.allSatisfy { part in
                part.isASCIIDigits && part.utf8.count <= 10
                    && (part.utf8.first != UInt8(ascii: "0") || part.utf8.count == 1)
            }
    }

    /// What one look could not check, one reason each.
    final class Unchecked {
        var reasons: [String] = []

        func note(_ reason: String) {
            reasons.append("whether its network interfaces and block devices are in use cannot be checked: \(reason)")
        }

        func note(_ error: IOFailure) { note("\(error)") }

        /// Class entries that cannot be followed by name: any of them may be the device's.
        func undecodable(_ names: [String], _ what: String) {
            guard !names.isEmpty else { return }
            reasons.append(
                "\(what) \(names.sorted().joined(separator: ", ")) has a name that is not UTF-8: whether it is "
                    + "this device's and in use cannot be checked")
        }
    }

    /// Whether nothing is at `path`, not even a dangling link: what left since it was
    /// listed, or what the kernel does not have.
    private func gone(_ path: String) -> Bool {
        do throws(IOFailure) { _ = try io.readLink(path) } catch { return error.errno == .ENOENT }
        return false
    }

    /// The entries of a directory; none where it is gone (or `entry`, the class entry it
    /// belongs to: a class the kernel was built without, a disk that left), and a failure
    /// noted where it cannot be listed.
    private func entries(of path: String, in entry: String? = nil, _ unchecked: Unchecked) -> DirectoryEntries {
        do throws(IOFailure) { return try io.listing(path) } catch {
            if !(error.errno == .ENOENT && gone(entry ?? path)) { unchecked.note(error) }
            return DirectoryEntries()
        }
    }

    /// A file's text; nil where it is missing and `entry` (the class entry it belongs to;
    /// nil: the file itself) is gone, and a failure noted where it cannot be read.
    private func text(_ path: String, of entry: String?, _ unchecked: Unchecked) -> String? {
        do throws(IOFailure) { return try io.read(path) } catch {
            if !(error.errno == .ENOENT && gone(entry ?? path)) { unchecked.note(error) }
            return nil
        }
    }

    /// Where an entry really leads. Nil when it left since it was listed; a failure noted
    /// when it is there and cannot be followed (a dangling or looping link), or leads out
    /// of `--root`'s tree (an absolute link there names the real host's files).
    func follow(_ entry: String, _ unchecked: Unchecked) -> String? {
        let real: String
        do throws(IOFailure) { real = try io.resolve(entry) } catch {
            if !gone(entry) { unchecked.note(error) }
            return nil
        }
        guard paths.root == "/" || Places.path(real, isBelow: paths.root) else {
            unchecked.note("\(entry) leads out of \(paths.root), to \(real)")
            return nil
        }
        return real
    }

    /// The block devices below the functions (indices into `places`), and the NVMe
    /// multipath namespaces (and their partitions) of subsystems one of whose controllers is
    /// below one; each with the functions it is below.
    private func blockDevices(_ places: [Places], _ unchecked: Unchecked) -> [(name: String, owners: [Int])] {
        var subsystems: [String: [Int]] = [:]
        let block = entries(of: paths.classBlock, unchecked)
        unchecked.undecodable(block.undecodable, "block device")
        return block.names.sorted().compactMap { name in
            guard var place = place(of: paths.classBlock + "/" + name, in: "class/block", unchecked) else { return nil }
            let below = places.indices.filter { places[$0].below(&place) }
            if !below.isEmpty { return (name, below) }
            guard let subsystem = nvmeSubsystem(of: place) else { return nil }
            if subsystems[subsystem.directory] == nil {
                var owners = Set<Int>()
                for controller in entries(of: subsystem.directory, unchecked).names.filter(isControllerName) {
                    let link = subsystem.directory + "/" + controller
                    guard var place = self.place(of: link, in: subsystem.sys, unchecked) else { continue }
                    owners.formUnion(places.indices.filter { !owners.contains($0) && places[$0].below(&place) })
                    if owners.count == places.count { break }
                }
                subsystems[subsystem.directory] = owners.sorted()
            }
            let owners = subsystems[subsystem.directory]!
            return owners.isEmpty ? nil : (name, owners)
        }
    }

    /// `…/nvme-subsystem/nvme-subsys0/nvme0n1/nvme0n1p1` → `…/nvme-subsystem/nvme-subsys0`;
    /// the last such name, since a followed path begins with the root's, which may hold it.
    func nvmeSubsystem(of path: String) -> String? {
        // In bytes: a search by characters cost some 30,000 instructions per block device.
        let bytes = Array(path.utf8), marker = Array("/nvme-subsystem/nvme-subsys".utf8)
        guard bytes.count >= marker.count,
            let start = stride(from: bytes.count - marker.count, through: 0, by: -1).first(where: {
                bytes[$0..<$0 + marker.count].elementsEqual(marker)
            })
        else { return nil }
        let end = bytes[(start + marker.count)...].firstIndex(of: UInt8(ascii: "/")) ?? bytes.count
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    /// `nvme0`: a controller link in a subsystem directory (namespaces are `nvme0n1`).
    private func isControllerName(_ name: String) -> Bool {
        name.hasPrefix("nvme") && name.count > 4 && name.dropFirst(4).allSatisfy { $0.isASCII && $0.isNumber }
    }
}
