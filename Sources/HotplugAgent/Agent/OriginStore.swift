import HostInterface
import Logging
import Glibc
import Policy

/// Where each device came from before the agent first moved it: one small record per device
/// in the state directory (`/run/hotplug-agent/origins/<address>`), so the agent can put
/// devices back when no policy wants them, also after a restart.
///
/// Each record is the target of a link named for the device (`writeRecordAtomically`): made
/// in one system call where the device has none, else a new link renamed over the old one,
/// so after the agent dies at any point each record is either the old one or the new one,
/// and a stray temporary link is ignored (and removed by the next sweep at start). A record
/// an older version wrote as a file is read too. Nothing is synced: `/run` is emptied at
/// boot, and the records need only outlive the agent, not the machine.
///
/// The agent is the only writer of its state directory, so each record is read once and
/// then kept in memory beside it; once the directory has been listed (the sweep at start),
/// a device it did not list has none, without a look. The directory is opened for writing
/// through the trusted walk once and kept: records are written and removed through that
/// descriptor, after one `stat` of its path says it is still the directory there (removed,
/// renamed or replaced meanwhile, the one there now is opened, through the walk again).
package final class OriginStore: Sendable {
    package let directory: String
    /// Records already read or written; `.some(nil)`: known to have none.
    private let known = Locked<[PCIAddress: DriverOrigin?]>([:])
    /// The names the directory held when it was listed; nil until then.
    private let listed = Locked<Set<String>?>(nil)
    /// The directory, open for writing into; and those it replaced (removed meanwhile), each
    /// kept open while a worker still writes through it, and closed when the last is done.
    private let opened = Locked<Opened>(Opened())
    private struct Opened {
        var current: Int32?
        /// The device and inode of `current`.
        var identity: (dev: UInt64, ino: UInt64)?
        /// How many operations use each descriptor now (`acquire` to `release`).
        var users: [Int32: Int] = [:]
        /// Replaced descriptors still in use.
        var retired = Set<Int32>()
    }

    /// `root`: the `--root` the state directory lies below (its links stay inside it), or `/`.
    package let root: String
    /// That root held, for the `stat` that checks the kept descriptor is the directory at the
    /// path as the store's walk resolves it (a link in the tree stays inside it); nil on `/`.
    private let heldRoot: HeldRoot?
    /// False for a dry run's store (and `plan`'s, `status`'s): it reads records, and never
    /// writes or removes one, whatever events come.
    package let writable: Bool
    /// Told of each record there that is not believed (why, in words), once per reading,
    /// or once of the whole directory (no device): the device is then one the agent did not
    /// move, and an admin should know.
    private let refused: @Sendable (PCIAddress?, String) -> Void

    package init(
        stateDirectory: String, root: String = "/", writable: Bool,
        refused: @escaping @Sendable (PCIAddress?, String) -> Void = { _, _ in }
    ) {
        self.root = root
        heldRoot = HeldRoot(root)
        self.writable = writable
        self.refused = refused
        directory = stateDirectory + "/origins"
    }

    /// A store that logs each record it does not believe, as a warning naming the device.
    package static func logging(
        stateDirectory: String, root: String = "/", writable: Bool, log: Logger
    ) -> OriginStore {
        OriginStore(stateDirectory: stateDirectory, root: root, writable: writable) { address, why in
            if let address {
                log.warning(
                    "where it came from is not believed: \(why); the agent will not put it back",
                    metadata: ["device": "\(address)"])
            } else {
                log.warning("where devices came from is not believed: \(why); the agent will not put them back")
            }
        }
    }

    deinit {
        let kept = opened.withLock { $0 }
        for fd in kept.retired.union(kept.current.map { [$0] } ?? []) { close(fd) }
    }

    /// The record of the device at `address` if it was written for a device of `id`; one
    /// written for another (a card put in its slot while no agent, or no event, saw the old
    /// one go) is said not to be believed, once, and removed: that card did not come from
    /// its driver.
    package func load(_ address: PCIAddress, of id: PCIID) -> DriverOrigin? {
        guard let kept = load(address) else { return nil }
        guard let recorded = kept.device, recorded != id else { return kept }
        // What is kept may be stale (another agent, `run --once` beside the daemon, may have
        // written the card's own since): judged again as it is now, before it is removed.
        let origin = read(address)
        known.withLock { $0[address] = origin }
        guard let origin, let recorded = origin.device, recorded != id else { return origin }
        known.withLock { $0[address] = .some(nil) }
        refused(address, "\(directory)/\(address): it was recorded for a \(recorded) device; a \(id) is there now")
        remove(address)
        return nil
    }

    /// The record as it was written, for whatever device.
    package func load(_ address: PCIAddress) -> DriverOrigin? {
        if let origin = known.withLock({ $0[address] }) { return origin }
        if let names = recordNames(), !names.contains(address.description) { return nil }
        let origin = read(address)
        known.withLock { $0[address] = origin }
        return origin
    }

    /// The names the directory holds, listed once (by the sweep, or the first load).
    private func recordNames() -> Set<String>? {
        if let names = listed.withLock({ $0 }) { return names }
        guard let names = listNames() else { return nil }
        return listed.withLock { listed in
            listed = listed ?? names
            return listed
        }
    }

    /// The names the directory holds now, through the trusted walk: none where there is no
    /// directory, or where it is not to be believed (said once, of no device, not once per
    /// device); nil where this user may not list it (each record is then tried, and denied,
    /// alone).
    private func listNames() -> Set<String>? {
        switch TrustedPath.list(directory, root: root, owners: .rootOrHandedOver) {
        case .success(let entries): return Set(entries.names)
        case .failure(let refusal) where refusal.isDenied: return nil
        case .failure(let refusal):
            if !refusal.isMissing { refused(nil, "\(directory): \(refusal.message)") }
            return []
        }
    }

    private func read(_ address: PCIAddress) -> DriverOrigin? {
        // Root acts on it (binds the device to the driver it names): read only if trusted.
        let path = "\(directory)/\(address)"
        let text: String
        switch TrustedPath.readRecord(path, root: root, owners: .rootOrHandedOver) {
        case .success(let bytes): text = String(decoding: bytes, as: UTF8.self)
        case .failure(let refusal):
            // One who may not read the state (a user's `plan`) is not told it is not believed.
            if !refusal.isMissing && !refusal.isDenied { refused(address, "\(path): \(refusal.message)") }
            return nil
        }
        guard let origin = parse(text) else {
            refused(address, "\(path): not a record the agent writes")
            return nil
        }
        return origin
    }

    /// A record's lines (`driver=`, `override=`, `moved-to=`, `sriov-vfs=`,
    /// `sriov-autoprobe=`, `device=`); nil when they do not make one, or are not exactly
    /// what the agent writes for the origin they say (`text(of:)`): a line missing, unknown,
    /// repeated or spelled otherwise is not a record of the agent's, and root does not act
    /// on a guess.
    private func parse(_ text: String) -> DriverOrigin? {
        guard let origin = fields(text), Self.text(of: origin) == text else { return nil }
        return origin
    }

    /// The values of the keys a record has (the last of each); whatever else a line holds
    /// is left to `parse`'s comparison with the text the origin makes.
    private func fields(_ text: String) -> DriverOrigin? {
        var driver: Substring?, override: Substring?, movedTo: Substring?, count: Substring?, autoprobe: Substring?
        var device: Substring?
        // In bytes: a split by characters took some 20,000 instructions per record.
        for bytes in text.utf8.split(separator: UInt8(ascii: "\n")) {
            guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")) else { continue }
            let value = Substring(bytes[bytes.index(after: equals)...])
            switch Substring(bytes[..<equals]) {
            case "driver": driver = value
            case "override": override = value
            case "moved-to": movedTo = value
            case "sriov-vfs": count = value
            case "sriov-autoprobe": autoprobe = value
            case "device": device = value
            default: continue
            }
        }
        var sriov: SRIOVOrigin?
        if let count = count.flatMap({ Int($0) }), count >= 0, let autoprobe, autoprobe == "0" || autoprobe == "1" {
            sriov = SRIOVOrigin(numVFs: count, autoprobe: autoprobe == "1")
        }
        let nonEmpty = { (value: Substring?) in value.flatMap { $0.isEmpty ? nil : String($0) } }
        var id: PCIID?
        if let device {
            guard let parsed = PCIID(device) else { return nil }
            id = parsed
        }
        let origin = DriverOrigin(
            driver: nonEmpty(driver), override: nonEmpty(override), movedTo: nonEmpty(movedTo), sriov: sriov,
            device: id)
        return Self.isBelievable(origin) ? origin : nil
    }

    /// Whether a record of `origin` is one the agent acts on: the driver, the override and
    /// where it moved the device to are driver names (which it writes into sysfs paths and
    /// `driver_override`), or `none` for the last; a record that moved no driver keeps an
    /// SR-IOV origin, with a VF count of 0 or more.
    static func isBelievable(_ origin: DriverOrigin) -> Bool {
        func named(_ value: String?) -> Bool { value.map(DriverKind.isValidName) ?? true }
        guard named(origin.driver), named(origin.override), origin.sriov.map({ $0.numVFs >= 0 }) ?? true else {
            return false
        }
        return origin.movedTo.map { DriverKind.isValidName($0) || $0 == "none" } ?? (origin.sriov != nil)
    }

    /// The record of `origin`, as the agent writes it and as it must read back.
    static func text(of origin: DriverOrigin) -> String {
        var text =
            "driver=\(origin.driver ?? "")\noverride=\(origin.override ?? "")\nmoved-to=\(origin.movedTo ?? "")\n"
        if let sriov = origin.sriov {
            text += "sriov-vfs=\(sriov.numVFs)\nsriov-autoprobe=\(sriov.autoprobe ? 1 : 0)\n"
        }
        if let device = origin.device { text += "device=\(device)\n" }
        return text
    }

    /// Writes the record. One that would not be believed when read back (a
    /// `driver_override` holding something other than a driver's name) is refused, so the
    /// step that would move the device fails: the agent never moves what it could not put
    /// back.
    package func save(_ address: PCIAddress, _ origin: DriverOrigin) throws(IOFailure) {
        let text = Self.text(of: origin)
        guard writable else {
            throw IOFailure(
                .write, "\(directory)/\(address)", value: text, errno: .EROFS, detail: "a dry run writes nothing")
        }
        // What `parse` would make of it: `fields` reads `text(of: origin)` back as `origin`
        // exactly when the origin is one it believes.
        guard Self.isBelievable(origin) else {
            throw IOFailure(
                .write, "\(directory)/\(address)", value: text, errno: .EINVAL,
                detail: "names something other than a driver; the agent could not put the device back from it")
        }
        do {
            try write(address, text)
            known.withLock { $0[address] = origin }
        } catch {
            known.withLock { $0[address] = nil }
            throw error
        }
    }

    /// Workers write through the kept descriptor (`acquireDirectory`); one that finds the
    /// directory gone meanwhile (ENOENT) has it opened afresh, and tries once more.
    private func write(_ address: PCIAddress, _ text: String) throws(IOFailure) {
        guard var fd = try acquireDirectory(creating: true) else {
            throw IOFailure(.open, directory, errno: .ENOENT)
        }
        defer { release(fd) }
        for attempt in 0..<2 {
            do throws(IOFailure) {
                return try writeRecordAtomically(address.description, in: fd, shown: directory, text)
            } catch where error.errno == .ENOENT && attempt == 0 {
                let stale = fd
                fd = try directoryDescriptor(replacing: stale)
                release(stale)
            } catch {
                throw error
            }
        }
    }

    /// The kept descriptor, once a `stat` of the directory's path says it holds the
    /// directory there now (an admin's `mv` or `rm -r` of it leaves the descriptor on the old
    /// one, where removals would miss the records a restarted agent reads); else the one
    /// there, opened through the trusted walk (made first where `creating`) and kept
    /// instead. Nil where there is none and none is to be made. In use until `release`.
    private func acquireDirectory(creating: Bool) throws(IOFailure) -> Int32? {
        var named = stat()
        let found = heldRoot.map { $0.stat(directory, &named) } ?? (stat(directory, &named) == 0)
        if !found && errno == ENOENT && !creating { return nil }
        let (held, current) = opened.withLock { kept -> (Int32?, Int32?) in
            guard found, let current = kept.current, let identity = kept.identity,
                identity == (UInt64(named.st_dev), UInt64(named.st_ino))
            else { return (nil, kept.current) }
            kept.users[current, default: 0] += 1
            return (current, current)
        }
        if let held { return held }
        return try directoryDescriptor(replacing: current)
    }

    /// An operation is done with `fd`: a replaced one nobody uses any more is closed.
    private func release(_ fd: Int32) {
        opened.withLock { kept in
            guard let users = kept.users[fd] else { return }
            kept.users[fd] = users > 1 ? users - 1 : nil
            if users == 1, kept.retired.remove(fd) != nil { close(fd) }
        }
    }

    /// The kept descriptor, in use until `release`; opened when there is none, or when it is
    /// still `stale` (which is closed now if no operation uses it, else by the last one's).
    private func directoryDescriptor(replacing stale: Int32?) throws(IOFailure) -> Int32 {
        try opened.withLock { (kept: inout Opened) throws(IOFailure) -> Int32 in
            if let current = kept.current, current != stale {
                kept.users[current, default: 0] += 1
                return current
            }
            if let stale, kept.current == stale {
                if kept.users[stale] == nil { close(stale) } else { kept.retired.insert(stale) }
                kept.current = nil
                kept.identity = nil
            }
            // Only where a record would be believed: below another user's directory, the
            // devices moved on it could never be put back (the step that would move one fails).
            let fd = try openDirectoryForWriting(directory, mode: 0o700, root: root, readBack: .rootOrHandedOver)
            var held = stat()
            kept.current = fd
            kept.identity = fstat(fd, &held) == 0 ? (UInt64(held.st_dev), UInt64(held.st_ino)) : nil
            kept.users[fd, default: 0] += 1
            return fd
        }
    }

    /// Forgets the records of devices that are not `present`: they left while no agent
    /// ran (or its events were lost), and whatever is plugged in there next did not come
    /// from that driver. Returns the devices whose records it removed (a name the agent
    /// does not write, as an upper-case address, is no record: never read, nor removed).
    package func sweep(keeping present: Set<PCIAddress>) -> [PCIAddress] {
        guard writable, let names = listNames() else { return [] }
        let departed = names.compactMap(PCIAddress.init).filter {
            !present.contains($0) && names.contains($0.description)
        }
        let removed = remove(departed.sorted())
        removeStaleTemporaries(names.filter(Self.isTemporary))
        listed.withLock { $0 = names.subtracting(removed.map(\.description)) }
        return removed
    }

    /// The temporary links of writes the agent was killed in the middle of (see
    /// `writeRecordAtomically`), which every read ignores: removed once a minute old (a write
    /// in flight is a moment old: another agent's, where one runs beside this one).
    private func removeStaleTemporaries(_ names: [String]) {
        guard !names.isEmpty, let fd = try? acquireDirectory(creating: false) else { return }
        defer { release(fd) }
        let now = time(nil)
        for name in names {
            var status = stat()
            guard fstatat(fd, name, &status, AT_SYMLINK_NOFOLLOW) == 0, status.st_mode & S_IFMT == S_IFLNK,
                now - status.st_mtim.tv_sec >= 60
            else { continue }
            unlinkat(fd, name, 0)
        }
    }

    /// `.0000:0b:00.0.k3j9x`: a temporary link `writeRecordAtomically` makes for a record.
    static func isTemporary(_ name: String) -> Bool {
        guard name.hasPrefix("."), let dot = name.lastIndex(of: "."), dot > name.startIndex else { return false }
        let address = String(name[name.index(after: name.startIndex)..<dot]), random = name[name.index(after: dot)...]
        // The address as the agent spells it (lower case); a suffix as `String(_:radix: 36)` makes one.
        return PCIAddress(address)?.description == address && !random.isEmpty
            && random.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7a) }
    }

    package func remove(_ address: PCIAddress) { _ = remove([address]) }

    /// The step that forgets where a device came from: as `remove`, and saying why a record
    /// that is there could not be removed (a read-only state directory), where `remove` says
    /// nothing. A record left would later put back a device the agent no longer moved.
    package func forget(_ address: PCIAddress) throws(IOFailure) {
        if let failure = unlink([address]).failure { throw failure }
    }

    /// Forgets what was read and listed, so that each record is read afresh: at a reload,
    /// when what the agent decides from the records changes. Another agent (`run --once`
    /// beside the daemon) may have written some since: a device it moved was kept as one
    /// with none, and a policy removed never put it back.
    package func forgetWhatWasRead() {
        known.withLock { $0 = [:] }
        listed.withLock { $0 = nil }
    }

    /// Unlinks the records through the kept descriptor, as they are written (`acquireDirectory`):
    /// two system calls, where the trusted walk to the directory took some 25. Every removal
    /// looks, whatever the store believes: another agent (`run --once` beside the daemon)
    /// may have written a record since, a write or an unlink may have failed halfway.
    /// Returns those whose record it unlinked.
    private func remove(_ addresses: [PCIAddress]) -> [PCIAddress] { unlink(addresses).removed }

    /// `remove`, and the first reason a record could not be removed: the directory could
    /// not be opened or trusted, or an unlink failed otherwise than with ENOENT.
    private func unlink(_ addresses: [PCIAddress]) -> (removed: [PCIAddress], failure: IOFailure?) {
        guard writable, !addresses.isEmpty else { return ([], nil) }
        let fd: Int32
        do throws(IOFailure) {
            // A directory that is missing holds none to remove.
            guard let opened = try acquireDirectory(creating: false) else { return ([], nil) }
            fd = opened
        } catch {
            return ([], error)
        }
        defer { release(fd) }
        var removed: [PCIAddress] = [], gone = Set<PCIAddress>(), failure: IOFailure?
        for address in addresses {
            if unlinkat(fd, address.description, 0) == 0 {
                removed.append(address)
            } else if errno != ENOENT {
                failure = failure ?? IOFailure(.unlink, "\(directory)/\(address)", errno: .current)
                continue
            }
            gone.insert(address)
        }
        // Unless the record is still there (or cannot be told), the device has none now.
        known.withLock { known in
            for address in addresses { known[address] = gone.contains(address) ? .some(nil) : nil }
        }
        return (removed, failure)
    }
}
