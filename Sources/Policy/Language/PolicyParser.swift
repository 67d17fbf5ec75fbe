/// Turns the text of one policy file into validated policies and every error in it.
///
/// The whole file is checked even after the first error, so `check` can list them all.
public struct PolicyParser: Sendable {
    public let accounts: any AccountResolver

    public init(accounts: any AccountResolver) {
        self.accounts = accounts
    }

    /// The raw bytes of a file: refused as a whole when over 1 MiB, holding a NUL byte or
    /// invalid UTF-8 (`PolicyText.problem`), else parsed, nesting and value count checked
    /// by the TOML parser as it reads.
    public func parse(bytes: [UInt8], file: String) -> (policies: [Policy], errors: [PolicyError]) {
        if let (line, message) = PolicyText.problem(in: bytes) {
            return ([], [PolicyError(file: file, line: line, message: message)])
        }
        return parseChecked(String(decoding: bytes, as: UTF8.self), file: file)
    }

    public func parse(_ text: String, file: String) -> (policies: [Policy], errors: [PolicyError]) {
        if let (line, message) = PolicyText.problem(in: text.utf8) {
            return ([], [PolicyError(file: file, line: line, message: message)])
        }
        return parseChecked(text, file: file)
    }

    /// Text that `PolicyText.problem` found nothing wrong with.
    private func parseChecked(_ text: String, file: String) -> (policies: [Policy], errors: [PolicyError]) {
        let root: TOML.Table
        do {
            root = try TOML.parse(text)
        } catch {
            let message = error.isLimit ? error.message : "invalid TOML: \(error.message)"
            return ([], [PolicyError(file: file, line: error.line, message: "\(message) (column \(error.column))")])
        }
        var reader = PolicyFileReader(file: file, root: root, accounts: accounts)
        var policies: [Policy] = []
        for key in root.keys.sorted() where key != "policy" {
            reader.error(nil, [key], "unknown key (policies are [[policy]] tables)")
        }
        if let value = root["policy"] {
            if let array = value.array {
                for (index, element) in array.enumerated() {
                    guard let table = element.table else {
                        reader.error(index, [], "expected a [[policy]] table, found \(element.kindDescription)")
                        continue
                    }
                    if let policy = reader.policy(table, index: index) { policies.append(policy) }
                }
            } else {
                reader.error(nil, ["policy"], "expected [[policy]] tables, found \(value.kindDescription)")
            }
        }
        let errors = reader.errors.enumerated().sorted { a, b in
            (a.element.line ?? .max, a.offset) < (b.element.line ?? .max, b.offset)
        }.map(\.element)
        return (errors.isEmpty ? policies : [], errors)
    }
}

/// Reads one file's policies, collecting errors with their lines.
struct PolicyFileReader {
    let file: String
    let root: TOML.Table
    let accounts: any AccountResolver
    var errors: [PolicyError] = []

    /// A key below a policy as its parts (`["match", "ids"]`); empty for the policy itself.
    typealias Key = [String]

    /// Records an error about `key`; `element` (`3` for `key[3]`) places it on that element's line.
    mutating func error(_ policy: Int?, _ key: Key, _ message: String, element: Int? = nil) {
        let shown = key.isEmpty ? nil : key.joined(separator: ".")
        errors.append(
            PolicyError(
                file: file, line: line(policy, key, element: element), key: shown,
                policyIndex: policy, message: message))
    }

    /// The line of `key` (of its element) in policy `policy`, else of the nearest key
    /// around it that the document placed; outside any policy, of a key of the root.
    func line(_ policy: Int?, _ key: Key, element: Int? = nil) -> Int? {
        guard let policy else { return key.first.flatMap { root.line(of: $0) } }
        var best = root.line(of: "policy", element: policy)
        guard var table = root["policy"]?.array?[policy].table else { return best }
        for (position, part) in key.enumerated() {
            guard let line = table.line(of: part) else { break }
            best = line
            if position == key.count - 1 {
                if let element, let line = table.line(of: part, element: element) { best = line }
            } else {
                guard let inner = table[part]?.table else { break }
                table = inner
            }
        }
        return best
    }

    mutating func policy(_ table: TOML.Table, index: Int) -> Policy? {
        let before = errors.count
        var name: String?
        var match: Match?
        var matchHadErrors = false
        var result = Policy(name: "", origin: SourceLocation(file: file, line: nil), match: Match())
        for key in table.keys.sorted() {
            let value = table[key]!
            switch key {
            case "name":
                guard let text = string(index, [key], value) else { continue }
                if Policy.isValidName(text) {
                    name = text
                } else {
                    error(index, [key], "\(quoted(text)) is not a policy name: 1 to 64 of A-Z a-z 0-9 . _ -")
                }
            case "match":
                let count = errors.count
                match = self.match(index, value)
                matchHadErrors = errors.count > count
            case "driver":
                guard let text = string(index, [key], value) else { continue }
                if text == "none" {
                    result.driver = DriverChoice.none
                } else if text == "vfio" {
                    result.driver = .vfio
                } else if DriverKind.isValidName(text) {
                    result.driver = .named(text)
                } else {
                    error(index, [key], "\(quoted(text)) is not a driver name")
                }
            case "claim-group": result.claimGroup = bool(index, [key], value) ?? false
            case "allow-boot-vga": result.allowBootVGA = bool(index, [key], value) ?? false
            case "allow-in-use": result.allowInUse = bool(index, [key], value) ?? false
            case "atomic-ops": result.atomicOps = bool(index, [key], value) ?? false
            case "sysfs":
                result.sysfs = parsedList(index, [key], value, AttributeWrite.parse)
            case "config":
                result.config = parsedList(index, [key], value, ConfigWrite.parse)
            case "sriov":
                guard let sriov = subtable(index, [key], value) else { continue }
                for sub in sriov.keys.sorted() {
                    let subKey = [key, sub], subValue = sriov[sub]!
                    switch sub {
                    case "num-vfs":
                        guard let count = integer(index, subKey, subValue) else { continue }
                        if (0...65535).contains(count) {
                            result.sriovNumVFs = count
                        } else {
                            error(index, subKey, "\(count) is out of range 0...65535")
                        }
                    case "autoprobe": result.sriovAutoprobe = bool(index, subKey, subValue)
                    default: error(index, subKey, "unknown key")
                    }
                }
            case "cdi":
                guard let cdi = subtable(index, [key], value) else { continue }
                for sub in cdi.keys.sorted() {
                    let subKey = [key, sub], subValue = cdi[sub]!
                    switch sub {
                    case "kind":
                        guard let text = string(index, subKey, subValue) else { continue }
                        switch CDIKind.parse(text) {
                        case .success(let kind): result.cdiKind = kind
                        case .failure(let message): error(index, subKey, message.text)
                        }
                    case "iommufd": result.cdiIOMMUFD = bool(index, subKey, subValue) ?? false
                    default: error(index, subKey, "unknown key")
                    }
                }
            case "owner":
                result.owner = account(
                    index, [key], value, kind: "user", lookup: accounts.userID,
                    unavailable: { [accounts] in accounts.unavailable(users: true) })
            case "group":
                result.group = account(
                    index, [key], value, kind: "group", lookup: accounts.groupID,
                    unavailable: { [accounts] in accounts.unavailable(users: false) })
            case "mode":
                guard let text = string(index, [key], value) else { continue }
                guard text.count >= 3, text.count <= 4, text.allSatisfy({ ("0"..."7").contains($0) }),
                    let mode = UInt16(text, radix: 8)
                else {
                    error(index, [key], "\(quoted(text)) is not an octal mode like \"0660\"")
                    continue
                }
                if mode > 0o777 {
                    error(index, [key], "\(quoted(text)) sets a setuid, setgid or sticky bit; a device node takes none")
                } else if mode & 0o002 != 0 {
                    error(index, [key], "\(quoted(text)) lets others write to the device node")
                } else {
                    result.mode = mode
                }
            default:
                error(index, [key], "unknown key")
            }
        }
        if table["name"] == nil { error(index, [], "name: required key is missing") }
        if table["match"] == nil || (match?.isEmpty == true && !matchHadErrors) {
            error(index, [], "match: at least one match key is required")
        }
        guard errors.count == before, let name, let match else { return nil }
        result.name = name
        result.match = match
        result.origin = SourceLocation(file: file, line: line(index, ["name"]))
        return result
    }

    mutating func match(_ index: Int, _ value: TOML.Value) -> Match? {
        guard let table = subtable(index, ["match"], value) else { return nil }
        var match = Match()
        for sub in table.keys.sorted() {
            let key = ["match", sub], value = table[sub]!
            switch sub {
            case "ids": match.ids = parsedList(index, key, value, idPattern)
            case "subsystem-ids": match.subsystemIDs = parsedList(index, key, value, idPattern)
            case "pf-ids": match.pfIDs = parsedList(index, key, value, idPattern)
            case "class":
                match.classes = parsedList(index, key, value) { text in
                    [2, 4, 6].contains(text.utf8.count) && text.isASCIIHexDigits
                        ? .success(text.asciiLowercased)
                        : .failure("\(quoted(text)) is not a class prefix of 2, 4 or 6 hex digits")
                }
            case "slots": match.slots = parsedList(index, key, value, slotPattern)
            case "driver":
                match.drivers = parsedList(index, key, value) { text in
                    DriverKind.isValidName(text) ? .success(text) : .failure("\(quoted(text)) is not a driver name")
                }
            case "vf": match.vf = bool(index, key, value)
            default: error(index, key, "unknown key")
            }
        }
        return match
    }
}

private func idPattern(_ text: String) -> Result<PCIIDPattern, PolicyMessage> {
    PCIIDPattern(text).map { .success($0) } ?? .failure("\(quoted(text)) is not vvvv:dddd")
}

/// Checks a `match.slots` entry and widens a pattern written without domain (or bus) to any.
private func slotPattern(_ text: String) -> Result<String, PolicyMessage> {
    let pattern = text.asciiLowercased
    let allowed = pattern.utf8.allSatisfy { hexValue($0) != nil || ":.*?".utf8.contains($0) }
    let colons = pattern.utf8.filter { $0 == UInt8(ascii: ":") }.count
    guard !pattern.isEmpty, allowed, colons <= 2, pattern.utf8.filter({ $0 == UInt8(ascii: ".") }).count <= 1 else {
        return .failure("\(quoted(text)) is not a PCI address pattern like \"0000:0b:00.0\"")
    }
    return .success(String(repeating: "*:", count: 2 - colons) + pattern)
}
