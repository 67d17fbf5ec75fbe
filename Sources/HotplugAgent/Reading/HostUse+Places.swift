import HostInterface
import Policy

extension HostUse {
    /// Where a sysfs entry leads: below `/sys` as the kernel's own link names it
    /// (`devices/pci0000:00/0000:03:00.0/net/eth0`), or where following it led.
    struct Place {
        let entry: String
        var sys: String?
        var resolved: String?
        /// Followed already (for a device whose own link is not of the kernel's form):
        /// `resolved` is what it led to; nil where it could not be, and why in `unfollowed`,
        /// for every device compared with it.
        var followed = false
        var unfollowed: [String] = []
    }

    /// Where `entry`, in `directory` (below `/sys`: `class/net`; nil where not known),
    /// leads, read once for every device compared with it. Nil when it left since it was
    /// listed, or cannot be followed (noted).
    func place(of entry: String, in directory: String?, _ unchecked: Unchecked) -> Place? {
        if let directory, let target = try? io.readLink(entry), let sys = Places.kernelPlace(target, from: directory) {
            return Place(entry: entry, sys: sys)
        }
        return follow(entry, unchecked).map { Place(entry: entry, resolved: $0) }
    }

    /// The NVMe subsystem directory a multipath namespace's place is in, as a directory
    /// to list and, where the place is sysfs's own, its place below `/sys`.
    func nvmeSubsystem(of place: Place) -> (directory: String, sys: String?)? {
        if let sys = place.sys {
            return nvmeSubsystem(of: sys).map { (paths.under("/sys/" + $0), $0) }
        }
        return place.resolved.flatMap(nvmeSubsystem).map { ($0, nil) }
    }

    /// Which entries lead below one device. The kernel makes every link from a class or bus
    /// directory to a device's relative, to the real directory of that device
    /// (`/sys/class/net/eth0` → `../../devices/pci0000:00/0000:03:00.0/net/eth0`), and
    /// nobody can make another in sysfs: such a link is read once and taken as written,
    /// where following it costs an `O_PATH` open, its name asked of `/proc` and a close.
    /// Any other entry (not a link; a link that is absolute, or has `.`, `..` or an empty
    /// name past its leading `..`s, as test trees make them) is followed, and two places
    /// are compared only in the same terms: a followed path names the real files (under
    /// umockdev, the test bed's), a link's text names sysfs's.
    final class Places {
        private let use: HostUse
        private let device: String
        /// What could not be told of this device's own place.
        let unchecked: Unchecked
        /// The device's own place, read when first asked: `.some(nil)` when it could be
        /// neither read nor followed (noted once).
        private var devicePlace: Place??
        private var deviceFollowed = false

        init(_ use: HostUse, _ address: PCIAddress) {
            self.use = use
            device = use.paths.device(address)
            unchecked = Unchecked()
        }

        /// Whether `place` (`HostUse.place(of:in:_:)`'s) is below the device (the device's
        /// own place read once, when first asked).
        func below(_ place: inout Place) -> Bool {
            if devicePlace == nil { devicePlace = .some(use.place(of: device, in: "bus/pci/devices", unchecked)) }
            guard var base = devicePlace! else { return false }
            if let sys = place.sys, let baseSys = base.sys { return Self.path(sys, isBelow: baseSys) }
            // Compared where the links lead: the device followed once too, if it was read.
            if base.resolved == nil && !deviceFollowed {
                deviceFollowed = true
                base.resolved = use.follow(device, unchecked)
                devicePlace = .some(base)
            }
            guard let baseReal = base.resolved else { return false }
            if place.resolved == nil && !place.followed {
                let notes = Unchecked()
                place.followed = true
                place.resolved = use.follow(place.entry, notes)
                place.unfollowed = notes.reasons
            }
            guard let real = place.resolved else {
                unchecked.reasons += place.unfollowed
                return false
            }
            return Self.path(real, isBelow: baseReal)
        }

        /// Compared byte by byte: as characters, a name below `base` that begins with a
        /// combining mark would join the `/` before it and not be below.
        static func path(_ path: String, isBelow base: String) -> Bool {
            path.utf8.count > base.utf8.count + 1 && path.utf8.starts(with: base.utf8)
                && path.utf8.dropFirst(base.utf8.count).first == UInt8(ascii: "/")
        }

        /// `directory` joined with a link's `target` of the kernel's form: relative, its
        /// `..`s first, then names only; a place below `devices/`, or nil. In bytes, as the
        /// kernel splits paths (every class entry of the host is read through here).
        static func kernelPlace(_ target: String, from directory: String) -> String? {
            var (target, directory) = (target, directory)
            return target.withUTF8 { target in directory.withUTF8 { join(target, $0) } }
        }

        private static func join(
            _ target: UnsafeBufferPointer<UInt8>, _ directory: UnsafeBufferPointer<UInt8>
        ) -> String? {
            let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
            guard target.first != slash else { return nil }
            /// The names between slashes, empty ones too.
            func names(_ bytes: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
                var names: [Range<Int>] = [], start = 0
                for index in 0...bytes.count where index == bytes.count || bytes[index] == slash {
                    names.append(start..<index)
                    start = index + 1
                }
                return names
            }
            func isDots(_ name: Range<Int>, _ count: Int) -> Bool {
                name.count == count && target[name].allSatisfy { $0 == dot }
            }
            var parts = names(directory).filter { !$0.isEmpty }
            var rest = names(target)[...]
            while let first = rest.first, isDots(first, 2) {
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
                rest.removeFirst()
            }
            guard !rest.isEmpty, rest.allSatisfy({ !$0.isEmpty && !isDots($0, 1) && !isDots($0, 2) }),
                parts.count + rest.count >= 2,
                (parts.first.map { directory[$0] } ?? target[rest.first!]).elementsEqual("devices".utf8)
            else { return nil }
            var place: [UInt8] = []
            for part in parts.map({ directory[$0] }) + rest.map({ target[$0] }) {
                if !place.isEmpty { place.append(slash) }
                place += part
            }
            return String(decoding: place, as: UTF8.self)
        }
    }
}
