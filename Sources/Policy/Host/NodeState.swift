/// Owner, group and permission bits of a `/dev/vfio/<group>` node, as lstat shows them.
public struct NodeState: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var mode: UInt16
    public var isCharacterDevice: Bool

    public init(uid: UInt32, gid: UInt32, mode: UInt16, isCharacterDevice: Bool = true) {
        self.uid = uid
        self.gid = gid
        self.mode = mode
        self.isCharacterDevice = isCharacterDevice
    }

    public var description: String { "\(uid):\(gid) \(octal(mode))" }
}

/// `0660`.
public func octal(_ mode: UInt16) -> String {
    let digits = String(mode, radix: 8)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}
