// How sysfs values and paths read as text.

/// `../../../bus/pci/drivers/vfio-pci` → `vfio-pci`; nil for an empty name.
package func lastComponent(_ path: String) -> String? {
    var path = Substring(path)
    while path.utf8.last == UInt8(ascii: "/") { path = path.dropLast() }
    guard !path.isEmpty else { return nil }
    guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return String(path) }
    return String(path[path.utf8.index(after: slash)...])
}

/// The text up to the first newline byte, as the kernel takes a written value (a `\r`
/// before it stays, as it does for the kernel).
package func firstLine(_ text: String) -> String {
    text.utf8.firstIndex(of: UInt8(ascii: "\n")).map { String(text[..<$0]) } ?? text
}
