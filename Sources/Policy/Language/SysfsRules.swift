/// Which attributes a `sysfs` entry may write: only the device's own, and none that the
/// agent or another key controls. The names are checked when the file is read (a glob may
/// still match one; each concrete path is checked again when it is planned), and where
/// the path really leads is checked when it is expanded and when it is written.
public enum SysfsRules {
    /// Attributes the agent or another key controls, or whose write acts on the device
    /// rather than setting something: never written through `sysfs`.
    public static let controlled: Set<String> = [
        "driver_override", "remove", "rescan", "reset", "config", "sriov_numvfs", "sriov_drivers_autoprobe"
    ]

    /// At most this many attributes per entry.
    public static let maxMatches = 256

    /// Why the concrete or glob path `components` may not be written, by the names alone;
    /// nil when they allow it. A glob component is judged when it is expanded.
    public static func refusal(of components: [String]) -> String? {
        if components.first == "driver" { return "driver/… belongs to the driver key and the agent" }
        for component in components.dropLast() where !component.contains("*") {
            if let why = entersAnotherDevice(component) { return why }
        }
        if let last = components.last, controlled.contains(last) {
            return "\(last) is controlled by the agent or another key"
        }
        return nil
    }

    /// Why a directory of this name below a device is another device: the links to the
    /// PF, a VF, the bus, and a PCI function below a bridge.
    public static func entersAnotherDevice(_ name: String) -> String? {
        if name == "physfn" || name == "subsystem" || name == "driver" { return "\(name) leads to another device" }
        if name.hasPrefix("virtfn"), Substring(name.utf8.dropFirst(6)).isASCIIDigits {
            return "\(name) leads to another device"
        }
        if PCIAddress(name) != nil { return "\(name) is another PCI device" }
        return nil
    }
}
