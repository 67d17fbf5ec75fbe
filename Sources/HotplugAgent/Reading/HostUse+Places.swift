import HostInterface
import Policy

extension HostUse {
    /// Where a sysfs entry leads: below `/sys` as the kernel's own link names it
    /// (`devices/pci0000:00/0000:03:00.0/net/eth0`), or where following it led.
    struct Place {
        let entry: String
        var sys: String?
        var resolved: String?
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
        private let unchecked: Unchecked
        /// The device's own place, read when first asked: `.some(nil)` when it could be
        /// neither read nor followed (noted once).
        private var devicePlace: Place??
        private var deviceFollowed = false

        init(_ use: HostUse, _ address: PCIAddress, _ unchecked: Unchecked) {
            self.use = use
            device = use.paths.device(address)
            self.unchecked = unchecked
        }

        /// Where `entry`, in `directory` (below `/sys`: `class/net`; nil where not known),
        /// leads. Nil when it left since it was listed, or cannot be followed (noted).
        func place(of entry: String, in directory: String?) -> Place? {
            if let directory, let target = try? use.io.readLink(entry),
                let sys = Self.kernelPlace(target, from: directory)
            {
                return Place(entry: entry, sys: sys)
            }
            return use.follow(entry, unchecked).map { Place(entry: entry, resolved: $0) }
        }

        /// Whether `place` is below the device (the device's own place read once, when
        /// first asked).
        func below(_ place: Place) -> Bool {
            if devicePlace == nil { devicePlace = .some(self.place(of: device, in: "bus/pci/devices")) }
            guard var base = devicePlace! else { return false }
            if let sys = place.sys, let baseSys = base.sys { return Self.path(sys, isBelow: baseSys) }
            // Compared where the links lead: the device followed once too, if it was read.
            if base.resolved == nil && !deviceFollowed {
                deviceFollowed = true
                base.resolved = use.follow(device, unchecked)
                devicePlace = .some(base)
            }
            guard let baseReal = base.resolved, let real = place.resolved ?? use.follow(place.entry, unchecked) else {
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

        /// The NVMe subsystem directory a multipath namespace's place is in, as a directory
        /// to list and, where the place is sysfs's own, its place below `/sys`.
        func nvmeSubsystem(of place: Place) -> (directory: String, sys: String?)? {
            if let sys = place.sys {
                return use.nvmeSubsystem(of: sys).map { (use.paths.under("/sys/" + $0), $0) }
            }
            return place.resolved.flatMap(use.nvmeSubsystem).map { ($0, nil) }
        }

        /// `directory` joined with a link's `target` of the kernel's form: relative, its
        /// `..`s first, then names only; a place below `devices/`, or nil.
        static func kernelPlace(_ target: String, from directory: String) -> String? {
            guard !target.hasPrefix("/") else { return nil }
            var parts = directory.split(separator: "/")
            var rest = target.split(separator: "/", omittingEmptySubsequences: false)[...]
            while rest.first == ".." {
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
                rest.removeFirst()
            }
            guard !rest.isEmpty, rest.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else { return nil }
            parts += rest
            guard parts.count >= 2, parts[0] == "devices" else { return nil }
            return parts.joined(separator: "/")
        }
    }
}
