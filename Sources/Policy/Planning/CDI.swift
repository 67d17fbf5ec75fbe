/// Container Device Interface (CDI): the devices the policies claim that are on a VFIO
/// driver now, as the specs a container runtime reads from `/var/run/cdi` (one per kind).
/// Names and kinds follow the rules of the CDI library Debian 12's podman carries
/// (container-device-interface 0.5): a spec of `cdiVersion` 0.5.0 is the newest it reads,
/// and the oldest that lets a device name start with a digit, as a PCI address does.
public struct CDISpec: Sendable, Equatable {
    public static let version = "0.5.0"

    public var kind: CDIKind
    /// In address order, each PCI device under its two names (`<policy>-<n>`, the address).
    public var devices: [Device]

    public init(kind: CDIKind, devices: [Device]) {
        self.kind = kind
        self.devices = devices
    }

    public struct Device: Sendable, Equatable {
        public var name: String
        public var address: PCIAddress
        public var nodes: [Node]

        public init(name: String, address: PCIAddress, nodes: [Node]) {
            self.name = name
            self.address = address
            self.nodes = nodes
        }
    }

    /// One `containerEdits.deviceNodes` entry: the node, and the owner, group and mode it
    /// gets in the container (those the agent gives it on the host; nil: the runtime's).
    public struct Node: Sendable, Equatable {
        public var path: String
        public var uid: UInt32?
        public var gid: UInt32?
        public var mode: UInt16?

        public init(path: String, uid: UInt32? = nil, gid: UInt32? = nil, mode: UInt16? = nil) {
            self.path = path
            self.uid = uid
            self.gid = gid
            self.mode = mode
        }
    }

    /// The file a kind's spec is kept in below `/var/run/cdi`: `hotplug-agent.json` for the
    /// default kind, `hotplug-agent.<vendor>.<class>.json` for a policy's own. One kind, one
    /// file: a class holds no dot, so the last one before `.json` tells vendor from class.
    public var fileName: String { Self.fileName(for: kind) }

    public static func fileName(for kind: CDIKind) -> String {
        kind == .default ? "hotplug-agent.json" : "hotplug-agent.\(kind.vendor).\(kind.deviceClass).json"
    }
}

/// `vendor/class`, as CDI allows them: a vendor of letters, digits, `_ - .`, a class of
/// letters, digits, `_ -`; each begins with a letter and ends with a letter or digit. At
/// most 200 bytes in all, so that its file's name (and the writer's temporary name for it)
/// stays within a file name's 255.
public struct CDIKind: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var vendor: String
    public var deviceClass: String

    public static let `default` = CDIKind(vendor: "hotplug-agent.io", deviceClass: "vfio")

    init(vendor: String, deviceClass: String) {
        self.vendor = vendor
        self.deviceClass = deviceClass
    }

    public var description: String { "\(vendor)/\(deviceClass)" }

    public static func < (a: CDIKind, b: CDIKind) -> Bool {
        // The default kind's file first, then the others by name.
        (a == .default ? 0 : 1, a.description) < (b == .default ? 0 : 1, b.description)
    }

    public static let maxLength = 200

    public static func parse(_ text: String) -> Result<CDIKind, PolicyMessage> {
        guard text.utf8.count <= maxLength else {
            return .failure("\(quoted(text)) is longer than \(maxLength) bytes, too long for a CDI kind")
        }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2,
            isName(parts[0], inner: { isAlphanumeric($0) || "_-.".utf8.contains($0) }),
            isName(parts[1], inner: { isAlphanumeric($0) || "_-".utf8.contains($0) })
        else {
            return .failure("\(quoted(text)) is not a CDI kind like \"vendor.example/class\"")
        }
        return .success(CDIKind(vendor: String(parts[0]), deviceClass: String(parts[1])))
    }

    private static func isName(_ text: Substring, inner: (UInt8) -> Bool) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, let last = bytes.last else { return false }
        return isLetter(first) && isAlphanumeric(last) && bytes.allSatisfy(inner)
    }
}

/// A CDI device name: letters, digits, `_ - . :`, beginning and ending with a letter or digit.
public func isCDIDeviceName(_ name: String) -> Bool {
    let bytes = Array(name.utf8)
    guard let first = bytes.first, let last = bytes.last else { return false }
    return isAlphanumeric(first) && isAlphanumeric(last)
        && bytes.allSatisfy { isAlphanumeric($0) || "_-.:".utf8.contains($0) }
}

private func isLetter(_ c: UInt8) -> Bool { (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a }
private func isAlphanumeric(_ c: UInt8) -> Bool { isLetter(c) || (c >= 0x30 && c <= 0x39) }

extension Planner {
    /// The specs for the devices the policies claim that are on a VFIO driver in `host`,
    /// one per kind, in file order. A device's nodes are those of one API: the legacy pair
    /// (the container, the group), or with `cdi.iommufd` where the device has a node of its
    /// own, the iommufd pair. A policy name that CDI does not take as a device name (one
    /// beginning with `.`, `_` or `-`) leaves the device under its address alone.
    ///
    /// A device that could not be read (`unreadable`) may be one a policy claims, and names
    /// are numbered in address order within a policy: from the first such address on, a
    /// device is listed under its address alone (`withheldFrom`), since its number could name
    /// another device once that one reads again. Names are never shifted to another device.
    public func cdiSpecs(in host: HostView) -> [CDISpec] {
        let withheldFrom = Self.numbersWithheld(in: host)
        var byKind: [CDIKind: [CDISpec.Device]] = [:]
        var counts: [String: Int] = [:]
        for address in host.devices.keys.sorted() {
            let device = host.devices[address]!
            // On the VFIO driver its policy wants: not one it is about to leave for another.
            guard host.isVFIO(device.driver), let group = device.iommuGroup,
                let claim = claimedDriver(for: device, in: host), claim.driver == device.driver
            else { continue }
            let policy = claim.policy
            // Only nodes that are there: the group's node (or the device's own, for iommufd).
            guard host.vfioNodes[group] != nil || (policy.cdiIOMMUFD && device.deviceNode != nil) else { continue }
            let nodes = cdiNodes(of: device, group: group, policy: policy)
            let n = counts[policy.name, default: 0]
            counts[policy.name] = n + 1
            let numbered = withheldFrom.map { address < $0 } ?? true
            let names = ((numbered ? ["\(policy.name)-\(n)"] : []) + [address.description]).filter(isCDIDeviceName)
            byKind[policy.cdiKind ?? .default, default: []] += names.map {
                CDISpec.Device(name: $0, address: address, nodes: nodes)
            }
        }
        return byKind.keys.sorted().map { CDISpec(kind: $0, devices: byKind[$0]!) }
    }

    /// The first address from which devices are listed under their address alone: the
    /// lowest that could not be read. Nil when every device was read.
    public static func numbersWithheld(in host: HostView) -> PCIAddress? { host.unreadable.keys.min() }

    /// The CDI names of one device, for `status`: empty unless it is in a spec.
    public func cdiNames(of address: PCIAddress, in specs: [CDISpec]) -> [String] {
        specs.flatMap { spec in spec.devices.filter { $0.address == address }.map { "\(spec.kind)=\($0.name)" } }
    }

    private func cdiNodes(of device: PCIDevice, group: Int, policy: Policy) -> [CDISpec.Node] {
        let mode = policy.mode ?? 0o600
        if policy.cdiIOMMUFD, let node = device.deviceNode {
            // In the container /dev/iommu is the policy's where the agent grants it on the host.
            return [
                CDISpec.Node(
                    path: "/dev/iommu", uid: policy.iommuUser?.id, gid: policy.iommuGroup?.id,
                    mode: 0o660),
                CDISpec.Node(
                    path: "/dev/vfio/devices/\(node.name)", uid: policy.owner?.id, gid: policy.group?.id,
                    mode: mode)
            ]
        }
        return [
            CDISpec.Node(path: "/dev/vfio/vfio", mode: 0o666),
            CDISpec.Node(path: "/dev/vfio/\(group)", uid: policy.owner?.id, gid: policy.group?.id, mode: mode)
        ]
    }
}
