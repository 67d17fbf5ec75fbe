import Policy
import Testing
import TestSupport

struct PolicyPropertyTests {
    /// Well-formed expressions parse to exactly what they say; anything else is refused
    /// with a message quoting it.
    @Test func setpciExpressionsParseToWhatTheySay() {
        var random = SeededGenerator(seed: 7)
        for _ in 0..<5000 {
            let width = random.pick([1, 2, 4])
            let letter = ["b", "w", "", "l"][width - 1]
            let offset = Int.random(in: 0..<(0x1000 / width), using: &random) * width
            let limit: UInt32 = width == 4 ? .max : (1 << (8 * UInt32(width))) - 1
            let value = UInt32.random(in: 0...limit, using: &random)
            let mask = UInt32.random(in: 0...limit, using: &random)
            let size = random.pick([letter, letter.uppercased()])
            let text = "\(String(offset, radix: 16)).\(size)=\(String(value, radix: 16)):\(String(mask, radix: 16))"
            let parsed = try? ConfigWrite.parse(text).get()
            #expect(
                parsed?.offset == offset && parsed?.width == width && parsed?.mask == mask
                    && parsed?.value == value & mask, "\(text)")
        }
        for _ in 0..<5000 {
            let text = random.text(from: "0123456789abcdefxCAPE_+.=:bwlq-", length: 0...24)
            switch ConfigWrite.parse(text) {
            case .success(let write):
                #expect(write.offset + write.width <= 0x1000 && write.offset % write.width == 0, "\(text)")
                #expect(write.value & ~write.mask == 0)
            case .failure(let message):
                #expect(message.text.hasPrefix(quoted(text) + ": "), "\(text)")
            }
        }
    }

    @Test func addressesAndIDPatternsRoundTrip() {
        var random = SeededGenerator(seed: 99)
        for _ in 0..<2000 {
            let address = PCIAddress(
                domain: UInt32.random(in: 0...0xffff, using: &random), bus: UInt8.random(in: 0...255, using: &random),
                device: UInt8.random(in: 0...31, using: &random), function: UInt8.random(in: 0...7, using: &random))
            #expect(PCIAddress(address.description) == address)
            #expect(PCIAddress(domain: address.domain, routingID: address.routingID) == address)
            let junk = random.text(from: "0123456789abcdefg:.x ", length: 0...14)
            if let parsed = PCIAddress(junk) { #expect(parsed.description == junk.lowercased()) }
            if let pattern = PCIIDPattern(junk) { #expect(pattern.description == junk.lowercased()) }
        }
    }
}
