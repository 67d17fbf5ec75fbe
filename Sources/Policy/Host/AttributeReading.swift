/// What one `sysfs` entry of a policy found below the device directory.
public struct AttributeReading: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        /// The attribute's contents.
        case value(String)
        /// It is not written, for this reason: another key's or the agent's, write-only, a
        /// link or another device on the way, too many matches.
        case refused(String)
    }

    /// The concrete path relative to the device directory (globs expanded).
    public var path: String
    public var state: State

    public init(path: String, state: State) {
        self.path = path
        self.state = state
    }
}
