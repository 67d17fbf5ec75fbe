import HostInterface
import FoundationEssentials
import Policy

/// A value as the commands print JSON: indented, keys sorted (stable for diffs and tests).
/// What the encoder leaves raw but would break or reorder a terminal's line (DEL, C1
/// controls, U+2028/2029, bidirectional controls) is escaped as `\uNNNN`, as JSON allows;
/// such characters occur only inside strings, so the document means the same.
package func prettyJSON(_ value: some Encodable) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let text = String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
    // Below U+0020 only the layout's own newlines remain: the encoder escapes the rest.
    let escaped = { (scalar: Unicode.Scalar) in scalar.value >= 0x20 && breaksAPrintedLine(scalar) }
    guard text.unicodeScalars.contains(where: escaped) else { return text }
    var out = ""
    out.reserveCapacity(text.utf8.count + 16)
    for scalar in text.unicodeScalars {
        if escaped(scalar) { out += "\\u" + hex(scalar.value, width: 4) } else { out.unicodeScalars.append(scalar) }
    }
    return out
}
