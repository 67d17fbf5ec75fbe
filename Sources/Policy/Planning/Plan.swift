/// One thing reconciling a device would do.
public enum Action: Sendable, Equatable {
    /// `modprobe` the module that registers this PCI driver.
    case loadModule(String)
    /// Write `driver_override`, unbind the current driver, probe, verify the `driver` link.
    case bind(driver: String, from: String?)
    /// Keep the device unbound: `driver_override` = `none`, then unbind.
    case unbind(from: String)
    /// Owner, group and mode of `/dev/vfio/<group>`; nil parts stay as they are.
    case setNodeAccess(group: Int, owner: Account?, nodeGroup: Account?, mode: UInt16?)
    /// Owner, group and mode of the device's own node `/dev/vfio/devices/<name>`.
    case setDeviceNodeAccess(name: String, owner: Account?, nodeGroup: Account?, mode: UInt16?)
    /// POSIX ACL entries on `/dev/iommu` so these users and groups can open it read-write.
    case grantIOMMU(users: [Account], groups: [Account])
    /// Write an attribute below the device directory (`path` relative, globs expanded).
    case writeAttribute(path: String, value: String)
    /// Read-modify-write of config space: only the bits in `mask` take `value`.
    case writeConfig(offset: Int, width: Int, value: UInt32, mask: UInt32, expression: String)
    /// `sriov_numvfs`.
    case setVFCount(Int)
    /// `sriov_drivers_autoprobe`, before VFs are made.
    case setAutoprobe(Bool)
    /// Put the device back where the agent took it from, and forget that it did.
    case restore(DriverOrigin)
    /// Forget a recorded origin that no longer describes the device.
    case forgetOrigin

    public var summary: String {
        switch self {
        case .loadModule(let module):
            return "load module \(module)"
        case .bind(let driver, let from):
            return "bind to \(driver) (now \(from.map { "on \($0)" } ?? "unbound"))"
        case .unbind(let from):
            return "unbind from \(from) and keep unbound"
        case .setNodeAccess(let group, let owner, let nodeGroup, let mode):
            return Self.nodeSummary("/dev/vfio/\(group)", owner, nodeGroup, mode)
        case .setDeviceNodeAccess(let name, let owner, let nodeGroup, let mode):
            return Self.nodeSummary("/dev/vfio/devices/\(name)", owner, nodeGroup, mode)
        case .grantIOMMU(let users, let groups):
            let entries = users.map { "user \($0)" } + groups.map { "group \($0)" }
            return "grant " + entries.joined(separator: ", ") + " read-write access to /dev/iommu (ACL)"
        case .writeAttribute(let path, let value):
            return "set \(path) to \(quoted(value))"
        case .writeConfig(let offset, _, _, _, let expression):
            return "set config \(expression) at 0x\(hex(offset, width: 3))"
        case .setVFCount(let count):
            return "set sriov_numvfs to \(count)"
        case .setAutoprobe(let on):
            return "set sriov_drivers_autoprobe to \(quoted(on ? "1" : "0"))"
        case .restore(let origin):
            return origin.driver.map { "put back on \($0)" } ?? "put back unbound"
        case .forgetOrigin:
            return "forget where it came from"
        }
    }
}

extension Action {
    /// A short name for the kind of action, as metrics label it.
    public var kind: String {
        switch self {
        case .loadModule: "load_module"
        case .bind: "bind"
        case .unbind: "unbind"
        case .setNodeAccess: "group_node"
        case .setDeviceNodeAccess: "device_node"
        case .grantIOMMU: "iommu_acl"
        case .writeAttribute: "sysfs"
        case .writeConfig: "config"
        case .setVFCount: "sriov_numvfs"
        case .setAutoprobe: "sriov_autoprobe"
        case .restore: "restore"
        case .forgetOrigin: "forget_origin"
        }
    }

    /// Whether the device's driver or override may differ after it from what was read
    /// before: a module loaded may take it; a sysfs write or an SR-IOV change may do
    /// anything. Node ownership, ACLs, config bits and records leave them.
    public var movesDevice: Bool {
        switch self {
        case .setNodeAccess, .setDeviceNodeAccess, .grantIOMMU, .writeConfig, .forgetOrigin: false
        case .loadModule, .bind, .unbind, .writeAttribute, .setVFCount, .setAutoprobe, .restore: true
        }
    }

    /// `set /dev/vfio/12 owner cloud (1000) group kvm (993) mode 0660`.
    static func nodeSummary(_ node: String, _ owner: Account?, _ group: Account?, _ mode: UInt16?) -> String {
        var parts = ["set \(node)"]
        if let owner { parts.append("owner \(owner)") }
        if let group { parts.append("group \(group)") }
        if let mode { parts.append("mode \(octal(mode))") }
        return parts.joined(separator: " ")
    }
}

/// An action with the reason it is taken.
public struct Step: Sendable, Equatable, CustomStringConvertible {
    public var action: Action
    public var reason: String

    public init(_ action: Action, reason: String) {
        self.action = action
        self.reason = reason
    }

    public var description: String { "\(action.summary): \(reason)" }
}

/// Something the policy asks for that the agent will not do, and why.
public struct Refusal: Sendable, Equatable, CustomStringConvertible {
    public var what: String
    public var reason: String

    public init(_ what: String, reason: String) {
        self.what = what
        self.reason = reason
    }

    public var description: String { "refused: \(what): \(reason)" }
}

/// Every decision about one device: the policy that applies, what to do, what is refused.
public struct DevicePlan: Sendable, Equatable {
    public var device: PCIDevice
    /// The policy that applies, nil when none does.
    public var policy: String?
    /// Set when the policy applies through `claim-group` of this group peer.
    public var via: PCIAddress?
    public var steps: [Step] = []
    public var refusals: [Refusal] = []
    /// What waits until a VM lets go of the device (printed `waiting: …`).
    public var waits: [Refusal] = []
    public var warnings: [String] = []

    public init(device: PCIDevice, policy: String? = nil, via: PCIAddress? = nil) {
        self.device = device
        self.policy = policy
        self.via = via
    }

    public var hasWork: Bool { !steps.isEmpty }

    /// `0000:0b:00.0 [1002:73bf] class 030000, driver amdgpu: policy "rx6800xt"`.
    public var headline: String {
        let driver = device.driver.map { "driver \($0)" } ?? "no driver"
        let policyText: String
        if let policy {
            policyText = "policy \(quoted(policy))" + (via.map { " (claim-group, with \($0))" } ?? "")
        } else {
            policyText = "no policy"
        }
        return "\(device.address) [\(device.id)] class \(device.classHex), \(driver): \(policyText)"
    }

    /// The decision lines under the headline, as `plan`, `--dry-run` and the log print them.
    public var lines: [String] {
        steps.map(\.description) + refusals.map(\.description) + waits.map { "waiting: \($0.what): \($0.reason)" }
            + warnings.map { "warning: \($0)" }
    }
}
