/// A message about one key's value, before it is placed in a file and line.
public struct PolicyMessage: Error, Sendable, Equatable, ExpressibleByStringInterpolation {
    public var text: String
    public init(stringLiteral value: String) { text = value }
    public init(stringInterpolation: DefaultStringInterpolation) {
        text = String(stringInterpolation: stringInterpolation)
    }
    public init(_ text: String) { self.text = text }
}
