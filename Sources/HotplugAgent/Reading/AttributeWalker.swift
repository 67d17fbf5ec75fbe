import HostInterface
import Policy

/// Expands one `sysfs` entry of a policy below a device's directory and reads what it
/// finds, without ever leaving the device: a glob is matched one component at a time
/// against the entries of directories that are the device's own. A link (`driver`,
/// `subsystem`, `physfn`, `virtfnN`, `iommu_group`, `firmware_node`) is never passed
/// through, nor the directory of another device: a PCI function below a bridge, or any
/// directory whose `subsystem` link names a bus (`usb1` below an xHCI controller, `host0`
/// below a SCSI HBA), while the device's own class devices (`drm/card0`, `net/eth0`, whose
/// `subsystem` names a class) are entered; the kernel
/// resolves each path beneath the device directory again when it is read and when it is
/// written. Attributes the agent or another key controls, and write-only ones, are
/// refused by name; an entry matching more than `SysfsRules.maxMatches` is refused whole.
package struct AttributeWalker {
    package let io: any KernelIO
    /// The device directory: every path is relative to it.
    package let directory: String

    package func readings(for write: AttributeWrite) -> [AttributeReading] {
        if let why = SysfsRules.refusal(of: write.components) {
            return [AttributeReading(path: write.path, state: .refused(why))]
        }
        var found = [""]
        var refused: [AttributeReading] = []
        for (index, component) in write.components.enumerated() {
            let isLast = index == write.components.count - 1
            let isGlob = component.contains("*")
            var next: [String] = []
            for prefix in found {
                let names: [String]
                if isGlob {
                    guard let listed = try? io.list(beneath: directory, prefix) else { continue }
                    names = listed.filter { globMatch(component, $0) }.sorted()
                } else {
                    names = [component]
                }
                for name in names {
                    let path = prefix.isEmpty ? name : prefix + "/" + name
                    if isLast {
                        next.append(path)
                    } else {
                        switch directoryVerdict(path, name) {
                        case .enter: next.append(path)
                        case .skip: continue
                        case .refuse(let why) where !isGlob:
                            refused.append(AttributeReading(path: write.path, state: .refused(why)))
                        case .refuse: continue
                        }
                    }
                    if next.count > SysfsRules.maxMatches {
                        let why = "it matches more than \(SysfsRules.maxMatches) attributes"
                        return [AttributeReading(path: write.path, state: .refused(why))]
                    }
                }
            }
            found = next
        }
        return refused + found.compactMap { path in reading(path, literal: !write.components.last!.contains("*")) }
    }

    private enum Verdict {
        case enter, skip, refuse(String)
    }

    /// Whether a directory on the way is the device's own.
    private func directoryVerdict(_ path: String, _ name: String) -> Verdict {
        if let why = SysfsRules.entersAnotherDevice(name) { return .refuse(why) }
        switch try? io.entry(beneath: directory, path) {
        case .directory?: return anotherDevice(path).map { .refuse($0) } ?? .enter
        case .symlink?: return .refuse("\(path) is a link out of the device directory")
        case nil: return .skip
        default: return .skip
        }
    }

    /// Why the directory at `path` below the device is another device: it has a
    /// `subsystem` entry that is not a link to a class (`/sys/class/NAME`), as the child
    /// devices of a bus have (`/sys/bus/NAME`). Nil for the device's own directories, its
    /// class devices among them. Anything odd in `subsystem` (not a link, a target that
    /// names no class) counts as another device. The one answer to that question, for
    /// planning and again for writing.
    package func anotherDevice(_ path: String) -> String? {
        guard (try? io.entry(beneath: directory, path + "/subsystem")).flatMap({ $0 }) != nil else { return nil }
        let target = (try? io.readLink(directory + "/" + path + "/subsystem")).map(Self.normalized) ?? []
        if target.count >= 2, target[target.count - 2] == "class" { return nil }
        if target.count >= 2, target[target.count - 2] == "bus" {
            return "\(path) is a device of bus \(target[target.count - 1])"
        }
        return "\(path) is another device (its subsystem is not a class)"
    }

    /// A link target's components with `.` and `..` applied, as the kernel would walk them.
    package static func normalized(_ target: String) -> [Substring] {
        var parts: [Substring] = []
        for part in target.split(byte: UInt8(ascii: "/")) where part != "." {
            if part == ".." {
                if !parts.isEmpty && parts.last != ".." { parts.removeLast() } else { parts.append(part) }
            } else {
                parts.append(part)
            }
        }
        return parts
    }

    /// What a concrete path holds, or why it is not written. A glob's non-attributes (a
    /// directory, a link) are passed over; named ones are refused.
    private func reading(_ path: String, literal: Bool) -> AttributeReading? {
        let name = lastComponent(path) ?? path
        if SysfsRules.controlled.contains(name) {
            return AttributeReading(path: path, state: .refused("\(name) is controlled by the agent or another key"))
        }
        if SysfsRules.entersAnotherDevice(name) != nil {
            return literal
                ? AttributeReading(path: path, state: .refused("\(name) is not an attribute of this device")) : nil
        }
        let kind: EntryKind?
        do {
            kind = try io.entry(beneath: directory, path)
        } catch {
            return AttributeReading(
                path: path, state: .refused("it cannot be reached inside the device directory (\(error.errno))"))
        }
        switch kind {
        case nil:
            return nil
        case .file(readable: false)?:
            return AttributeReading(
                path: path,
                state: .refused("it is write-only: it cannot be read back, so it would be written at every event"))
        case .file(readable: true)?:
            do {
                return AttributeReading(path: path, state: .value(try io.read(beneath: directory, path)))
            } catch {
                return AttributeReading(path: path, state: .refused("it cannot be read back (\(error.errno))"))
            }
        case .symlink?:
            return literal
                ? AttributeReading(path: path, state: .refused("it is a link out of the device directory")) : nil
        case .directory?, .other?:
            return literal ? AttributeReading(path: path, state: .refused("it is not an attribute")) : nil
        }
    }
}
