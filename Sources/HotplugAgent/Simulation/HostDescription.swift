/// A machine for the simulated host: its PCI devices, the drivers its kernel has, and the
/// accounts policies may name. Stored as JSON (`hosts/*.json`); `simulate --host` reads it.
struct HostDescription: Codable, Sendable {
    var name: String
    var users: [String: UInt32]?
    var groups: [String: UInt32]?
    var drivers: [Driver]
    var devices: [Device]

    struct Driver: Codable, Sendable {
        var name: String
        /// The module that registers it; defaults to the name with `-` as `_`.
        var module: String?
        /// Registered at boot (module loaded or built in).
        var loaded: Bool
        /// `modprobe` can load it (false: not installed or blacklisted).
        var loadable: Bool?
        /// Static ID table: `vvvv:dddd` patterns.
        var ids: [String]?
        /// Class-code prefixes it binds (`0604` for pcieport, `0c0330` for xhci).
        var classes: [String]?
    }

    struct Device: Codable, Sendable {
        var address: String
        var id: String
        var subsystem: String?
        var `class`: String
        /// The upstream bridge; nil for devices on a root bus.
        var parent: String?
        var iommuGroup: Int?
        var driver: String?
        var bootVGA: Bool?
        /// Further attribute files and their contents (`reset_method`, `d3cold_allowed`).
        var attributes: [String: String]?

        enum CodingKeys: String, CodingKey {
            case address, id, subsystem, `class`, parent, driver, attributes
            case iommuGroup = "iommu_group"
            case bootVGA = "boot_vga"
        }
    }
}
