/// Who may open `/dev/iommu` read-write because of the policies: the owner and group of a
/// policy's device nodes, where its mode gives them write (the kernel's 0600 when it sets
/// none: the owner only). Entries the agent added to `/dev/iommu`'s ACL for a user or group
/// no policy names any more are taken back; entries it did not add are never touched.
public struct IOMMUGrants: Sendable, Equatable {
    public var users: [UInt32]
    public var groups: [UInt32]

    public init(users: [UInt32] = [], groups: [UInt32] = []) {
        self.users = users
        self.groups = groups
    }

    public var isEmpty: Bool { users.isEmpty && groups.isEmpty }

    /// What taking them back means, for `plan` and the log.
    public var takeBack: String {
        "take back the ACL entries the agent added for \(description): no policy names them any more"
    }

    /// `user 1000 and group 993`.
    public var description: String {
        (users.map { "user \($0)" } + groups.map { "group \($0)" }).joined(separator: " and ")
    }
}

extension Policy {
    /// The node owner, where the mode lets the owner write.
    public var iommuUser: Account? { (mode ?? 0o600) & 0o200 != 0 ? owner : nil }
    /// The node group, where the mode lets the group write.
    public var iommuGroup: Account? { (mode ?? 0o600) & 0o020 != 0 ? group : nil }
}

extension PolicySet {
    /// Of the entries the agent added (`recorded`), those no policy names any more.
    public func iommuRevocations(recorded: IOMMUGrants) -> IOMMUGrants {
        let users = Set(policies.compactMap { $0.iommuUser?.id })
        let groups = Set(policies.compactMap { $0.iommuGroup?.id })
        return IOMMUGrants(users: recorded.users.filter { !users.contains($0) }.sorted(),
                           groups: recorded.groups.filter { !groups.contains($0) }.sorted())
    }
}
