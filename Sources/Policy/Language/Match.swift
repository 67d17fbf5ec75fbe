/// The `match.*` keys of a policy. Every key given must hold; a list holds when any entry does.
public struct Match: Sendable, Equatable {
    public var ids: [PCIIDPattern]?
    public var subsystemIDs: [PCIIDPattern]?
    /// Lower-case hex prefixes of the 6-digit class code.
    public var classes: [String]?
    /// Lower-case glob patterns over the full address; a pattern written without a domain
    /// matches any domain, as lspci's and setpci's `-s` do.
    public var slots: [String]?
    /// Driver names; `"none"` stands for no driver.
    public var drivers: [String]?
    public var vf: Bool?
    public var pfIDs: [PCIIDPattern]?

    public init() {}

    public var isEmpty: Bool {
        ids == nil && subsystemIDs == nil && classes == nil && slots == nil && drivers == nil && vf == nil
            && pfIDs == nil
    }

    /// Whether every given key holds for `device`.
    ///
    /// `match.driver` also holds while the device sits on the driver its own policy binds
    /// (`ownDriver`): a policy that moves devices off `amdgpu` keeps them once they are on
    /// `vfio-pci`, or it would stop applying its ownership and attribute settings.
    public func holds(for device: PCIDevice, ownDriver: DriverChoice? = nil, vfio: VFIODrivers = VFIODrivers()) -> Bool
    {
        if let ids, !ids.contains(where: { $0.matches(device.id) }) { return false }
        if let subsystemIDs {
            guard let sub = device.subsystemID, subsystemIDs.contains(where: { $0.matches(sub) }) else { return false }
        }
        if let classes {
            let code = device.classHex
            if !classes.contains(where: { code.hasPrefix($0) }) { return false }
        }
        if let slots {
            let address = device.address.description
            if !slots.contains(where: { globMatch($0, address) }) { return false }
        }
        if let drivers {
            let current = device.driver ?? "none"
            let own = ownDriver.map(\.description)
            // `driver = "vfio"`: whichever VFIO driver it is on is its policy's.
            let onOwn = current == own || (ownDriver == .vfio && vfio.contains(device.driver))
            if !drivers.contains(current) && !onOwn { return false }
        }
        if let vf, vf != device.isVF { return false }
        if let pfIDs {
            guard let pf = device.pfID, pfIDs.contains(where: { $0.matches(pf) }) else { return false }
        }
        return true
    }
}

/// Shell-style glob over ASCII: `*` any run, `?` one character, everything else literal.
public func globMatch(_ pattern: String, _ text: String) -> Bool {
    let p = Array(pattern.utf8), t = Array(text.utf8)
    var pi = 0, ti = 0
    var star = -1, mark = 0
    while ti < t.count {
        if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == t[ti]) {
            pi += 1; ti += 1
        } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
            star = pi; mark = ti; pi += 1
        } else if star >= 0 {
            pi = star + 1; mark += 1; ti = mark
        } else {
            return false
        }
    }
    while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
    return pi == p.count
}
