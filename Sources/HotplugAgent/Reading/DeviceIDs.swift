import HostInterface
import Policy

/// A device's IDs, subsystem IDs and class as sysfs shows them: from its `uevent` file, the
/// kernel's own words (`PCI_ID`, `PCI_CLASS`, `PCI_SUBSYS_ID`, each once, always all
/// three); where that file does not name all three (a test bed built by hand, never a
/// kernel), from the `vendor`, `device`, `class` and `subsystem_*` files, which the kernel
/// shows the same values in. A device shown with none of them is not read: a policy may
/// match it by any of them (`match.subsystem-ids` tells cards of one chip apart).
struct DeviceIDs {
    var id: PCIID
    var classCode: UInt32
    var subsystemID: PCIID

    static let attributeFiles = ["vendor", "device", "class", "subsystem_vendor", "subsystem_device"]

    /// From a `uevent` file's text; nil when it does not name all three (what it names is
    /// checked first). Read line by line in its bytes (every device's identity comes through
    /// here), keeping only the three keys it uses.
    init?(uevent text: String, path: String) throws(AgentError) {
        var text = text
        let scanned = text.withUTF8(Self.scan)
        func string(_ range: Range<Int>?) -> Substring? {
            range.map { Substring(text.utf8.dropFirst($0.lowerBound).prefix($0.count)) }
        }
        // The kernel names each once: a second is not a value to choose from.
        if let (key, line) = scanned.repeated {
            throw .malformed(path: path, value: String(string(line)!), expected: "\(key) once")
        }
        let (id, classCode, subsystem) = (string(scanned.id), string(scanned.classCode), string(scanned.subsystem))
        func malformed(_ key: String, _ value: Substring?, _ expected: String) -> AgentError {
            .malformed(path: path, value: "\(key)=\(value ?? "")", expected: expected)
        }
        let parsedID = id.flatMap { PCIID($0) }, subsystemID = subsystem.flatMap { PCIID($0) }
        let parsedClass = classCode.flatMap { Self.hex($0, digits: 6) }
        if id != nil && parsedID == nil { throw malformed("PCI_ID", id, "VVVV:DDDD") }
        if classCode != nil && parsedClass == nil { throw malformed("PCI_CLASS", classCode, "a 24-bit hex number") }
        if subsystem != nil && subsystemID == nil { throw malformed("PCI_SUBSYS_ID", subsystem, "VVVV:DDDD") }
        guard let parsedID, let subsystemID, let parsedClass else { return nil }
        self.id = parsedID
        self.classCode = parsedClass
        self.subsystemID = subsystemID
    }

    /// Where a uevent's three values lie (byte offsets), or the first line that names one of
    /// them again.
    private struct Scanned {
        var id: Range<Int>?, classCode: Range<Int>?, subsystem: Range<Int>?
        var repeated: (key: String, line: Range<Int>)?
    }

    private static func scan(_ bytes: UnsafeBufferPointer<UInt8>) -> Scanned {
        let keys: [StaticString] = ["PCI_ID", "PCI_CLASS", "PCI_SUBSYS_ID"]
        var values: [Range<Int>?] = [nil, nil, nil], start = 0
        var scanned: Scanned { Scanned(id: values[0], classCode: values[1], subsystem: values[2]) }
        while start < bytes.count {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
            defer { start = end + 1 }
            guard let equals = bytes[start..<end].firstIndex(of: UInt8(ascii: "=")) else { continue }
            let key = UnsafeBufferPointer(rebasing: bytes[start..<equals])
            for (slot, name) in keys.enumerated()
            where key.elementsEqual(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)) {
                guard values[slot] == nil else {
                    var repeated = scanned
                    repeated.repeated = ("\(name)", start..<end)
                    return repeated
                }
                values[slot] = equals + 1..<end
            }
        }
        return scanned
    }

    /// From the attribute files (`0x1002`); nil when one is missing.
    init?(attributes files: [String: String], directory: String) throws(AgentError) {
        func value(_ name: String, bits: Int) throws(AgentError) -> UInt32? {
            guard let text = files[name] else { return nil }
            let line = firstLine(text)
            guard let value = Self.hex(line.hasPrefix("0x") ? line.dropFirst(2) : Substring(line), digits: bits / 4)
            else {
                throw .malformed(path: directory + "/" + name, value: line, expected: "a \(bits)-bit hex number")
            }
            return value
        }
        guard let vendor = try value("vendor", bits: 16), let device = try value("device", bits: 16),
            let classCode = try value("class", bits: 24), let subVendor = try value("subsystem_vendor", bits: 16),
            let subDevice = try value("subsystem_device", bits: 16)
        else { return nil }
        id = PCIID(vendor: UInt16(vendor), device: UInt16(device))
        self.classCode = classCode
        subsystemID = PCIID(vendor: UInt16(subVendor), device: UInt16(subDevice))
    }

    /// Up to `digits` hex digits and nothing else (no sign, no space).
    private static func hex(_ text: Substring, digits: Int) -> UInt32? {
        var value: UInt32 = 0, count = 0
        for byte in text.utf8 {
            guard count < digits, let digit = hexValue(byte) else { return nil }
            value = value << 4 | UInt32(digit)
            count += 1
        }
        return count == 0 ? nil : value
    }
}

extension SysfsReader {
    /// The IDs of the device whose directory `reading` looked at: its uevent's, or its
    /// attribute files' where the uevent does not name them all (one more look; another
    /// directory there by then is a device that left). A directory that is still there with
    /// neither is malformed, not gone: it is named, never passed over.
    func ids(_ address: PCIAddress, _ reading: DirectoryReading, in directory: String) throws(AgentError) -> DeviceIDs {
        if let uevent = reading.files["uevent"], let ids = try DeviceIDs(uevent: uevent, path: directory + "/uevent") {
            return ids
        }
        let attributes: DirectoryReading
        do {
            attributes = try io.readDirectory(directory, DirectoryRequest(files: DeviceIDs.attributeFiles))
        } catch where error.meansGone {
            throw .gone(address)
        } catch {
            throw .io(error)
        }
        // A second look: only where it saw the same directory as the first are the two one
        // device's (another may have taken the address between them, or been swapped in).
        guard attributes.shows(fileSystem: reading.fileSystem, inode: reading.inode) else {
            throw .gone(address)
        }
        guard let ids = try DeviceIDs(attributes: attributes.files, directory: directory) else {
            throw .malformed(
                path: directory + "/uevent", value: firstLine(reading.files["uevent"] ?? ""),
                expected: "PCI_ID, PCI_CLASS and PCI_SUBSYS_ID, or vendor, device, class and subsystem_* files")
        }
        return ids
    }
}
