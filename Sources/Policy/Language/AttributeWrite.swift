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
