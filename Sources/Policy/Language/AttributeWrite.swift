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
        // In bytes, as the kernel will take the path and the value: as characters, a `/`
        // or `=` followed by a combining mark is not found, nor a newline after a `\r`.
        guard let equals = text.utf8.firstIndex(of: UInt8(ascii: "=")) else {
            return .failure("\(quoted(text)): expected \"path=value\"")
        }
        let path = text[..<equals]
        let value = String(text[text.utf8.index(after: equals)...])
        if path.isEmpty { return .failure("\(quoted(text)): the path is empty") }
        if path.isAbsolutePath { return .failure("\(quoted(text)): the path must be relative") }
        let components = path.split(byte: UInt8(ascii: "/"), omittingEmptySubsequences: false).map(String.init)
        if components.contains("..") { return .failure("\(quoted(text)): the path may not contain \"..\"") }
        if components.contains(where: { $0.isEmpty || $0 == "." }) {
            return .failure("\(quoted(text)): the path has an empty or \".\" component")
        }
        if value.utf8.contains(UInt8(ascii: "\n")) {
            return .failure("\(quoted(text)): the value may not contain a newline")
        }
        if let why = SysfsRules.refusal(of: components) { return .failure("\(quoted(text)): \(why)") }
        return .success(AttributeWrite(components: components, value: value))
    }
}
