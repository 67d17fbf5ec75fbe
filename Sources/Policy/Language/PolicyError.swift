/// An error in a policy file. It names the file, and the line where one is known; otherwise
/// the key path (`policy[2].match.ids`, policies counted from 0 within the file).
public struct PolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    /// The key relative to its policy (`match.ids`, `sysfs[1]`), nil for file-level problems.
    public var key: String?
    /// Which policy of the file, for the key path when no line is known.
    public var policyIndex: Int?
    public var message: String

    public init(file: String, line: Int? = nil, key: String? = nil, policyIndex: Int? = nil, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.policyIndex = policyIndex
        self.message = message
    }

    /// `policy[2].match.ids`, or just the key outside any policy.
    public var keyPath: String? {
        switch (policyIndex, key) {
        case let (index?, key?): "policy[\(index)].\(key)"
        case let (index?, nil): "policy[\(index)]"
        case let (nil, key): key
        }
    }

    /// One line: the file name, keys and message come from the file system and the file,
    /// so control characters in them are escaped.
    public var description: String {
        let text: String
        if let line {
            text = "\(file):\(line): " + (key.map { "\(shortened($0)): " } ?? "") + message
        } else {
            text = "\(file): " + (keyPath.map { "\(shortened($0)): " } ?? "") + message
        }
        return escapingControlCharacters(text)
    }

    /// A key as long as a file allows, cut to 200 characters for the message.
    private func shortened(_ key: String) -> String {
        key.unicodeScalars.count <= 200 ? key : String(String.UnicodeScalarView(key.unicodeScalars.prefix(200))) + "…"
    }
}
