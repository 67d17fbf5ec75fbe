/// Who can open `/dev/iommu` read-write, as its mode and POSIX ACL say: the users and
/// groups with read and write (the owner, the owning group and named entries, within the
/// ACL's mask), or everyone.
public struct IOMMUAccess: Sendable, Equatable {
    public var users: Set<UInt32>
    public var groups: Set<UInt32>
    public var everyone: Bool

    public init(users: Set<UInt32>, groups: Set<UInt32>, everyone: Bool = false) {
        self.users = users
        self.groups = groups
        self.everyone = everyone
    }

    public func userCanOpen(_ uid: UInt32) -> Bool { everyone || users.contains(uid) }
    public func groupCanOpen(_ gid: UInt32) -> Bool { everyone || groups.contains(gid) }
}
