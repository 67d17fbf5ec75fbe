/// `/proc/self/mountinfo`: for each mount its device number (field 3), mount point
/// (field 5) and source (the field after the ` - ` separator and the file system type).
package struct Mounts {
    package struct Entry {
        package var number: String
        package var point: String
        package var source: String
    }

    package let entries: [Entry]

    package init(mountInfo: String) {
        entries = mountInfo.split(byte: UInt8(ascii: "\n")).compactMap { line in
            // Fields split on the space byte: as characters, a field that begins with a
            // combining mark would join the space before it.
            let fields = line.split(byte: UInt8(ascii: " "), omittingEmptySubsequences: false)
            guard fields.count > 4, let separator = fields.firstIndex(of: "-"), separator + 2 < fields.count else {
                return nil
            }
            return Entry(
                number: String(fields[2]), point: Mounts.unescape(fields[4]),
                source: Mounts.unescape(fields[separator + 2]))
        }
    }

    /// Where the block device with this number or node is mounted: its number names it
    /// (ext4, xfs), or its source does (btrfs and bcachefs, whose numbers are anonymous;
    /// bcachefs joins several devices with `:`).
    package func mountPoint(number: String, node: String) -> String? {
        entries.first { entry in
            (!number.isEmpty && entry.number == number)
                || entry.source.split(byte: UInt8(ascii: ":")).contains { $0.utf8.elementsEqual(node.utf8) }
        }?.point
    }

    /// mountinfo writes space, tab, newline and backslash as `\040`-style octal escapes.
    package static func unescape(_ field: Substring) -> String {
        guard field.utf8.contains(UInt8(ascii: "\\")) else { return String(field) }
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3,
                let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
