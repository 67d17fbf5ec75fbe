/// What an entry below a device directory is, as lstat shows it.
package enum EntryKind: Equatable, Sendable {
    case directory
    /// An attribute; `readable` is false for write-only ones (mode 0200: `remove`, `reset`).
    case file(readable: Bool)
    case symlink
    case other
}
