// How sysfs values and paths read as text.

/// `../../../bus/pci/drivers/vfio-pci` → `vfio-pci`; nil for an empty name.
/// In bytes: through a `Substring`'s views each call took some 1,200 instructions, six
/// times a claim. Cut at `/` bytes, the name is whole UTF-8 as the path was.
package func lastComponent(_ path: String) -> String? {
    var path = path
    return path.withUTF8 { bytes -> String? in
        var end = bytes.count
        while end > 0 && bytes[end - 1] == UInt8(ascii: "/") { end -= 1 }
        guard end > 0 else { return nil }
        var start = end
        while start > 0 && bytes[start - 1] != UInt8(ascii: "/") { start -= 1 }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
    }
}

/// The text up to the first newline byte, as the kernel takes a written value (a `\r`
/// before it stays, as it does for the kernel).
package func firstLine(_ text: String) -> String {
    text.utf8.firstIndex(of: UInt8(ascii: "\n")).map { String(text[..<$0]) } ?? text
}
