/// All policies in evaluation order: files in lexical order of their names, then file order.
/// For each device the first policy that matches wins.
public struct PolicySet: Sendable, Equatable {
    public let policies: [Policy]

    public init(_ policies: [Policy]) {
        self.policies = policies
    }

    /// Joins the files' policies in order, reporting names used twice.
    public static func assemble(_ files: [[Policy]]) -> (set: PolicySet, errors: [PolicyError]) {
        var seen: [String: Policy] = [:]
        var errors: [PolicyError] = []
        var all: [Policy] = []
        for policy in files.joined() {
            if let first = seen[policy.name] {
                errors.append(PolicyError(file: policy.origin.file, line: policy.origin.line, key: "name",
                                          message: "\(quoted(policy.name)) is already used at \(first.origin)"))
                continue
            }
            seen[policy.name] = policy
            all.append(policy)
        }
        return (PolicySet(all), errors)
    }

    /// The position of the first policy whose match keys all hold for `device`.
    public func firstMatchIndex(for device: PCIDevice, vfio: VFIODrivers = VFIODrivers()) -> Int? {
        // By position: each policy taken whole would be a copy (a retain and release of each
        // of its fields), for every device, several times per reconcile.
        for index in policies.indices
        where policies[index].match.holds(for: device, ownDriver: policies[index].driver, vfio: vfio) {
            return index
        }
        return nil
    }

    /// The first policy whose match keys all hold for `device`.
    public func firstMatch(for device: PCIDevice, vfio: VFIODrivers = VFIODrivers()) -> Policy? {
        firstMatchIndex(for: device, vfio: vfio).map { policies[$0] }
    }
}

/// Which policy files count, and in which order.
public enum PolicySources {
    /// `*.toml`, not hidden (editors leave `.#x.toml` and `.x.toml.swp` behind).
    public static func isPolicyFileName(_ name: String) -> Bool {
        name.hasSuffix(".toml") && name.count > 5 && !name.hasPrefix(".")
    }

    /// The files to read, given each directory's entries in precedence order: a name in an
    /// earlier directory masks the same name in a later one (`/etc` over `/usr/lib`), and
    /// all files are read in lexical order of their names.
    public static func select(_ listings: [(directory: String, names: [String])]) -> [String] {
        var chosen: [String: String] = [:]
        for (directory, names) in listings {
            for name in names where isPolicyFileName(name) && chosen[name] == nil {
                chosen[name] = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            }
        }
        return chosen.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.map { chosen[$0]! }
    }
}
