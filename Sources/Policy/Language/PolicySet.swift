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
                errors.append(
                    PolicyError(
                        file: policy.origin.file, line: policy.origin.line, key: "name",
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
    /// `*.toml`, not hidden (editors leave `.#x.toml` and `.x.toml.swp` behind). Judged in
    /// bytes, as the file system names it: as characters, a mark after the `.` hides it
    /// from `hasPrefix`, and a prepended mark before `.toml` joins it.
    public static func isPolicyFileName(_ name: String) -> Bool {
        let bytes = name.utf8, suffix = ".toml".utf8
        return bytes.count > suffix.count && bytes.first != UInt8(ascii: ".")
            && bytes.suffix(suffix.count).elementsEqual(suffix)
    }

    /// The files to read, given each directory's entries in precedence order: a name in an
    /// earlier directory masks the same name in a later one (`/etc` over `/usr/lib`), and
    /// all files are read in lexical order of their names.
    /// Names are told apart and ordered by their bytes: two `String`s that are canonically
    /// equal (`é` as one scalar or as `e` and a combining mark) are one key of a dictionary,
    /// and one file would have masked the other.
    public static func select(_ listings: [(directory: String, names: [String])]) -> [String] {
        var chosen: [[UInt8]: String] = [:]
        for (directory, names) in listings {
            for name in names where isPolicyFileName(name) && chosen[Array(name.utf8)] == nil {
                chosen[Array(name.utf8)] = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            }
        }
        return chosen.keys.sorted { $0.lexicographicallyPrecedes($1) }.map { chosen[$0]! }
    }
}
