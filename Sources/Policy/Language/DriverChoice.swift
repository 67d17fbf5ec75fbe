/// The `driver` key: bind to a named driver, keep the device unbound (`"none"`), or bind
/// it to the VFIO driver made for it (`"vfio"`: see `VFIOVariants`).
public enum DriverChoice: Sendable, Equatable, CustomStringConvertible {
    case named(String)
    case none
    case vfio

    public var description: String {
        switch self {
        case .named(let name): name
        case .none: "none"
        case .vfio: "vfio"
        }
    }
}
