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
        !name.isEmpty && name.utf8.count <= 64 && name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
                || c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
        }
    }

    /// Whether the policy says anything about `/dev/vfio/<group>`.
    public var setsNodeAccess: Bool { owner != nil || group != nil || mode != nil }

    /// Whether a node shows another owner, group or mode than the policy asks.
    public func nodeAccessDiffers(from node: NodeState) -> Bool {
        (owner.map { $0.id != node.uid } ?? false) || (group.map { $0.id != node.gid } ?? false) || (mode.map { $0 != node.mode } ?? false)
    }
}

public struct SourceLocation: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int?

    public init(file: String, line: Int?) {
        self.file = file
        self.line = line
    }

    public var description: String { line.map { "\(file):\($0)" } ?? file }
}

/// The `driver` key: bind to a named driver, keep the device unbound (`"none"`), or bind
/// it to the VFIO driver made for it (`"vfio"`: see `VFIOVariants`).
public enum DriverChoice: Sendable, Equatable, CustomStringConvertible {
    case named(String)
    case none
    case vfio

    public var description: String {
        switch self {
        case .named(let name): name
        case .none: "none"
        case .vfio: "vfio"
        }
    }
}

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
}

extension AccountResolver {
    public func userName(of id: UInt32) -> String? { nil }
}

/// One entry of `sysfs`: a relative attribute path below the device directory and the value.
public struct AttributeWrite: Sendable, Equatable, CustomStringConvertible {
    /// Path components; each may hold `*` globs.
    public var components: [String]
    public var value: String

    public init(components: [String], value: String) {
        self.components = components
        self.value = value
    }

    public var path: String { components.joined(separator: "/") }
    public var description: String { "\(path)=\(value)" }

    /// Parses `relative/path=value`, refusing absolute paths, `..`, empty components, and
    /// what the names alone show to be another key's or another device's (see `SysfsRules`).
    public static func parse(_ text: String) -> Result<AttributeWrite, PolicyMessage> {
        guard let equals = text.firstIndex(of: "=") else {
            return .failure("\(quoted(text)): expected \"path=value\"")
        }
        let path = text[..<equals]
        let value = String(text[text.index(after: equals)...])
        if path.isEmpty { return .failure("\(quoted(text)): the path is empty") }
        if path.hasPrefix("/") { return .failure("\(quoted(text)): the path must be relative") }
        let components = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if components.contains("..") { return .failure("\(quoted(text)): the path may not contain \"..\"") }
        if components.contains(where: { $0.isEmpty || $0 == "." }) {
            return .failure("\(quoted(text)): the path has an empty or \".\" component")
        }
        if value.contains("\n") { return .failure("\(quoted(text)): the value may not contain a newline") }
        if let why = SysfsRules.refusal(of: components) { return .failure("\(quoted(text)): \(why)") }
        return .success(AttributeWrite(components: components, value: value))
    }
}

/// A message about one key's value, before it is placed in a file and line.
public struct PolicyMessage: Error, Sendable, Equatable, ExpressibleByStringInterpolation {
    public var text: String
    public init(stringLiteral value: String) { text = value }
    public init(stringInterpolation: DefaultStringInterpolation) { text = String(stringInterpolation: stringInterpolation) }
    public init(_ text: String) { self.text = text }
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
            if ch.value < 0x20 || ch.value == 0x7f { out += "\\u" + hex(ch.value, width: 4) } else { out.unicodeScalars.append(ch) }
        }
    }
    return out + "\""
}
