/// One `[[policy]]` table, validated. Everything a planner needs, nothing read from the host.
public struct Policy: Sendable, Equatable {
    public var name: String
    /// Where the `[[policy]]` header stands, for messages.
    public var origin: SourceLocation
    public var match: Match
    public var sysfs: [AttributeWrite] = []
    public var config: [ConfigWrite] = []
    public var atomicOps = false
    public var driver: DriverChoice?
    public var claimGroup = false
    public var allowBootVGA = false
    public var allowInUse = false
    public var sriovNumVFs: Int?
    public var sriovAutoprobe: Bool?
    public var owner: Account?
    public var group: Account?
    /// Permission bits of `/dev/vfio/<group>` (0...0o777).
    public var mode: UInt16?
    /// The CDI kind its devices are listed under; nil: `CDIKind.default`.
    public var cdiKind: CDIKind?
    /// List the iommufd nodes in the CDI spec, where the device has one.
    public var cdiIOMMUFD = false

    public init(name: String, origin: SourceLocation, match: Match) {
        self.name = name
        self.origin = origin
        self.match = match
    }

    /// 1 to 64 of `A-Z a-z 0-9 . _ -`: a name that prints as itself in every log line.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
                    || c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
            }
    }

    /// Whether the policy says anything about `/dev/vfio/<group>`.
    public var setsNodeAccess: Bool { owner != nil || group != nil || mode != nil }

    /// Whether a node shows another owner, group or mode than the policy asks.
    public func nodeAccessDiffers(from node: NodeState) -> Bool {
        (owner.map { $0.id != node.uid } ?? false) || (group.map { $0.id != node.gid } ?? false)
            || (mode.map { $0 != node.mode } ?? false)
    }
}

/// A string as TOML would write it, for messages: `"1002:74a"`. Past 200 characters it
/// is cut short (`"aaaa…"`): a message names a value, it does not repeat a megabyte of it.
public func quoted(_ text: some StringProtocol) -> String {
    var out = "\""
    for (index, ch) in text.unicodeScalars.enumerated() {
        if index == 200 {
            out += "…"
            break
        }
        switch ch {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default:
            if ch.value < 0x20 || ch.value == 0x7f {
                out += "\\u" + hex(ch.value, width: 4)
            } else {
                out.unicodeScalars.append(ch)
            }
        }
    }
    return out + "\""
}
