import Policy

/// A POSIX access ACL as the kernel stores it in the `system.posix_acl_access` extended
/// attribute (version 2: a 4-byte header, then 8 bytes per entry: tag, permissions, id,
/// little-endian), so no libacl is needed. Only what `/dev/iommu` needs: reading who may
/// open a node read-write, and adding users and groups without taking anything away.
package struct POSIXACL: Equatable, Sendable {
    package enum Tag: UInt16, Comparable, Sendable {
        case userObj = 0x01, user = 0x02, groupObj = 0x04, group = 0x08, mask = 0x10, other = 0x20
        package static func < (a: Tag, b: Tag) -> Bool { a.rawValue < b.rawValue }
    }

    package struct Entry: Equatable, Sendable {
        package var tag: Tag
        package var perm: UInt16
        /// The user or group for named entries; undefined (all ones) for the others.
        package var id: UInt32
    }

    package static let attribute = "system.posix_acl_access"
    package static let undefinedID = UInt32.max
    package static let readWrite: UInt16 = 0o6

    package private(set) var entries: [Entry]

    /// The ACL a mode implies (what a file without the attribute has).
    package init(mode: UInt16) {
        entries = [
            Entry(tag: .userObj, perm: (mode >> 6) & 7, id: Self.undefinedID),
            Entry(tag: .groupObj, perm: (mode >> 3) & 7, id: Self.undefinedID),
            Entry(tag: .other, perm: mode & 7, id: Self.undefinedID)
        ]
    }

    /// Decodes the attribute; nil when it is not a version 2 ACL with the three base entries.
    package init?(xattr bytes: [UInt8]) {
        guard bytes.count >= 4, (bytes.count - 4) % 8 == 0, Self.little32(bytes, 0) == 2 else { return nil }
        var entries: [Entry] = []
        var offset = 4
        while offset < bytes.count {
            guard let tag = Tag(rawValue: Self.little16(bytes, offset)) else { return nil }
            entries.append(
                Entry(tag: tag, perm: Self.little16(bytes, offset + 2) & 7, id: Self.little32(bytes, offset + 4)))
            offset += 8
        }
        guard [Tag.userObj, .groupObj, .other].allSatisfy({ tag in entries.contains { $0.tag == tag } }) else {
            return nil
        }
        self.entries = entries
    }

    /// The ACL in the attribute of `path`, or an error when it cannot be decoded: the
    /// agent then leaves the node alone rather than write back anything else.
    package static func decoding(_ bytes: [UInt8], of path: String) throws(IOFailure) -> POSIXACL {
        guard let acl = POSIXACL(xattr: bytes) else {
            throw IOFailure(
                .getxattr, path, value: attribute, errno: .EINVAL,
                detail: "an ACL the agent cannot decode, left alone")
        }
        return acl
    }

    package var xattr: [UInt8] {
        var bytes: [UInt8] = [2, 0, 0, 0]
        for entry in entries {
            bytes += [
                UInt8(entry.tag.rawValue & 0xff), UInt8(entry.tag.rawValue >> 8),
                UInt8(entry.perm & 0xff), UInt8(entry.perm >> 8)
            ]
            bytes += (0..<4).map { UInt8(truncatingIfNeeded: entry.id >> (8 * UInt32($0))) }
        }
        return bytes
    }

    /// Adds read and write for these users and groups: a named entry gains them (or is
    /// made), and the mask grows to let them through. No other entry's effective access
    /// grows: an entry loses only the bits the grown mask would newly let through (what
    /// the old mask held back and still holds back stays in the entry, for an admin who
    /// widens the mask later). Entries stay in the order the kernel requires (by tag, then
    /// id). Returns the users and groups whose entries it made (not those already named).
    @discardableResult
    package mutating func grant(users: [UInt32], groups: [UInt32]) -> IOMMUGrants {
        let oldMask = entries.first(where: { $0.tag == .mask })?.perm
        var made = IOMMUGrants()
        var granted = Set<Int>()
        func add(_ tag: Tag, _ id: UInt32) {
            if let index = entries.firstIndex(where: { $0.tag == tag && $0.id == id }) {
                entries[index].perm |= Self.readWrite
                granted.insert(index)
            } else {
                entries.append(Entry(tag: tag, perm: Self.readWrite, id: id))
                granted.insert(entries.count - 1)
                if tag == .user { made.users.append(id) } else { made.groups.append(id) }
            }
        }
        users.forEach { add(.user, $0) }
        groups.forEach { add(.group, $0) }
        let groupClass: Set<Tag> = [.user, .groupObj, .group]
        if let oldMask, let maskIndex = entries.firstIndex(where: { $0.tag == .mask }) {
            let newMask = oldMask | Self.readWrite
            let admitted = newMask & ~oldMask
            for index in entries.indices where groupClass.contains(entries[index].tag) && !granted.contains(index) {
                entries[index].perm &= ~admitted
            }
            entries[maskIndex].perm = newMask
        } else if entries.contains(where: { $0.tag == .user || $0.tag == .group }) {
            // Without a mask the group entry was the group class's only limit: the new mask
            // lets through what it and the granted entries have, and nobody else gains.
            let groupClassPerm = entries.filter { groupClass.contains($0.tag) }.reduce(UInt16(0)) { $0 | $1.perm }
            entries.append(Entry(tag: .mask, perm: groupClassPerm, id: Self.undefinedID))
        }
        entries.sort { ($0.tag, $0.id) < ($1.tag, $1.id) }
        return made
    }

    /// Removes the named entries of these users and groups (those the agent made); the
    /// mask stays, so nobody else's access grows.
    package mutating func revoke(users: [UInt32], groups: [UInt32]) {
        entries.removeAll { entry in
            (entry.tag == .user && users.contains(entry.id)) || (entry.tag == .group && groups.contains(entry.id))
        }
    }

    /// Who may open the node read-write, given its owner and group.
    package func access(owner: UInt32, group: UInt32) -> IOMMUAccess {
        let mask = entries.first { $0.tag == .mask }?.perm ?? 7
        func rw(_ perm: UInt16) -> Bool { perm & Self.readWrite == Self.readWrite }
        var users = Set<UInt32>(), groups = Set<UInt32>()
        for entry in entries {
            switch entry.tag {
            case .userObj: if rw(entry.perm) { users.insert(owner) }
            case .user: if rw(entry.perm & mask) { users.insert(entry.id) }
            case .groupObj: if rw(entry.perm & mask) { groups.insert(group) }
            case .group: if rw(entry.perm & mask) { groups.insert(entry.id) }
            case .mask: break
            case .other: break
            }
        }
        return IOMMUAccess(users: users, groups: groups, everyone: rw(entries.first { $0.tag == .other }?.perm ?? 0))
    }

    private static func little16(_ bytes: [UInt8], _ offset: Int) -> UInt16 {
        UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    private static func little32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) }
    }
}
