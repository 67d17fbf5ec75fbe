/// Drivers a VM can use a group through.
public enum DriverKind {
    /// vfio-pci and its vendor variants (`mlx5_vfio_pci`, `nvgrace_gpu_vfio_pci`, …).
    public static func isVFIO(_ driver: String?) -> Bool {
        guard let driver else { return false }
        return driver == "vfio-pci" || driver.hasSuffix("_vfio_pci") || driver.hasSuffix("-vfio-pci")
    }

    /// A group is usable by a VM only when each member is on a VFIO driver, pci-stub,
    /// pcieport (bridges) or nothing.
    public static func keepsGroupViable(_ driver: String?) -> Bool {
        guard let driver else { return true }
        return isVFIO(driver) || driver == "pci-stub" || driver == "pcieport"
    }

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
