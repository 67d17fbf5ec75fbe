/// What makes a driver's name one the agent writes to sysfs and hands to modprobe.
public enum DriverKind {
    /// A name that can stand in `/sys/bus/pci/drivers/<name>` and on modprobe's command
    /// line: it starts with a letter or digit (never `-r`, `.` or `..`).
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, isAlphanumeric(first) else { return false }
        return name.utf8.count <= 64
            && name.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
                    || c == 0x2d || c == 0x5f || c == 0x2e
            }
    }

    private static func isAlphanumeric(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
    }
}
