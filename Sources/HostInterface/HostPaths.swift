import Glibc
import Policy

/// Every path the agent touches, derived from one root (`/` on a real host, a temporary
/// directory in tests), so nothing ever reaches the real `/sys` or `/dev` by accident.
package struct HostPaths: Sendable {
    package let root: String

    /// A relative root is taken relative to the working directory, never as `/`; empty and
    /// `.` components are dropped (`/a//t0/.` is `/a/t0`).
    package init(root: String = "/") {
        // On the `/` byte, as the kernel splits paths (see `TrustedPath.components`).
        let components = absolutePath(root).split(byte: UInt8(ascii: "/")).filter { $0 != "." }
        let root = "/" + components.joined(separator: "/"), base = root == "/" ? "" : root
        self.root = root
        (pciDevices, pciDrivers, iommuGroups, vfioNodes) = (
            base + "/sys/bus/pci/devices", base + "/sys/bus/pci/drivers", base + "/sys/kernel/iommu_groups",
            base + "/dev/vfio"
        )
    }

    /// `root` + an absolute path.
    package func under(_ path: String) -> String { root == "/" ? path : root + path }

    /// The root a path of the agent's is walked below: for its default place (`chosen` nil,
    /// a path under the root) the root, so that links in it resolve inside; for a path the
    /// caller named outright, `/`.
    package func walkRoot(chosen: String?) -> String { chosen == nil ? root : "/" }

    /// The directories every look starts from, made once.
    package let pciDevices: String, pciDrivers: String, iommuGroups: String, vfioNodes: String
    package var driversProbe: String { under("/sys/bus/pci/drivers_probe") }

    package func device(_ address: PCIAddress) -> String { joinedPath(pciDevices, address.description) }
    package func attribute(_ address: PCIAddress, _ name: String) -> String {
        joinedPath(pciDevices, address.description, name)
    }
    package func driver(_ name: String) -> String { joinedPath(pciDrivers, name) }
    package func iommuGroupDevices(_ group: Int) -> String { joinedPath(iommuGroups, String(group), "devices") }
    package func vfioNode(_ group: Int) -> String { joinedPath(vfioNodes, String(group)) }

    package var classNet: String { under("/sys/class/net") }
    package var classBlock: String { under("/sys/class/block") }
    package var mountInfo: String { under("/proc/self/mountinfo") }
    package var swaps: String { under("/proc/swaps") }

    package var policyDirectories: [String] {
        [under("/etc/hotplug-agent/policies.d"), under("/usr/lib/hotplug-agent/policies.d")]
    }
    package var passwd: String { under("/etc/passwd") }
    package var stateDirectory: String { under("/run/hotplug-agent") }
    package var groupFile: String { under("/etc/group") }
}

/// `directory`, `name` and `last` joined by `/`, written once into a string of their
/// length: the agent builds a path for nearly every file it touches, and interpolation
/// appended them piece by piece (a device's directory took a half more instructions;
/// appending into reserved capacity took more still).
package func joinedPath(_ directory: String, _ name: String, _ last: String? = nil) -> String {
    var pieces = (directory, name, last ?? "")
    let count = pieces.0.utf8.count + 1 + pieces.1.utf8.count + (last == nil ? 0 : 1 + pieces.2.utf8.count)
    return String(unsafeUninitializedCapacity: count) { buffer in
        var at = 0
        func put(_ piece: inout String) {
            piece.withUTF8 { bytes in
                guard let start = bytes.baseAddress else { return }
                buffer.baseAddress!.advanced(by: at).update(from: start, count: bytes.count)
                at += bytes.count
            }
        }
        func slash() {
            buffer[at] = UInt8(ascii: "/")
            at += 1
        }
        put(&pieces.0)
        slash()
        put(&pieces.1)
        if last != nil {
            slash()
            put(&pieces.2)
        }
        return at
    }
}

/// The working directory's path; nil where it cannot be named: removed, or named in bytes
/// that are not UTF-8 (decoded, each bad byte would become U+FFFD, and a relative path name
/// another directory: `tree\xff/.` read as `tree\u{FFFD}`, a tree someone made beside).
package func workingDirectory() -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    guard getcwd(&buffer, buffer.count) != nil else { return nil }
    return buffer.withUnsafeBufferPointer { String(validatingCString: $0.baseAddress!) }
}

/// `path` made absolute against the working directory, as a user means a relative path on
/// the command line (`--root tree` is `$PWD/tree`; an empty path is the working directory).
package func absolutePath(_ path: String) -> String {
    if path.isAbsolutePath { return path }
    // The commands refuse to start where there is none (`workingDirectory`).
    guard let directory = workingDirectory() else { return "/nonexistent/" + path }
    if path.isEmpty || path == "." { return directory }
    return (directory == "/" ? "" : directory) + "/" + path
}
