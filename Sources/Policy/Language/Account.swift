/// A user or group as the policy named it, resolved to its number.
public struct Account: Sendable, Equatable, CustomStringConvertible {
    public var id: UInt32
    public var name: String?

    public init(id: UInt32, name: String? = nil) {
        self.id = id
        self.name = name
    }

    public var description: String { name.map { "\($0) (\(id))" } ?? String(id) }
}

/// Resolves user and group names; the agent reads them from the host root, tests from a table.
public protocol AccountResolver: Sendable {
    func userID(named name: String) -> UInt32?
    func groupID(named name: String) -> UInt32?
    /// The user's name, for messages and for files that name users (limits.conf).
    func userName(of id: UInt32) -> String?
    /// Why names of users (or groups) cannot be looked up at all, for the error that names
    /// one: the accounts file was refused. Nil when they can.
    func unavailable(users: Bool) -> String?
}

extension AccountResolver {
    public func userName(of id: UInt32) -> String? { nil }
    public func unavailable(users: Bool) -> String? { nil }
}
