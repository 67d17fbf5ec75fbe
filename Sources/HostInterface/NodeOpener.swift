import Policy

/// What `/proc/self/ns/pid` reads in the host's initial PID namespace: its inode is fixed.
package let hostPIDNamespace = "pid:[4026531836]"

/// A process holding a VFIO device: a VMM holding `/dev/vfio/12` open, a device descriptor
/// it took from the group (which outlives the group node), or a mapping of a BAR (which
/// outlives every descriptor).
package struct NodeOpener: Equatable, Sendable {
    package enum Hold: Equatable, Sendable {
        /// A node open (or mapped) with this device number.
        case node(UInt64)
        /// A descriptor from `VFIO_GROUP_GET_DEVICE_FD`; nil when the kernel does not say
        /// of which device (before 6.18, `fdinfo` has no `vfio-device-syspath`).
        case descriptor(PCIAddress?)
        /// A mapping of a VFIO device's region (a BAR); `maps` does not say of which device.
        case mapping
    }

    package var hold: Hold
    package var pid: Int32
    /// `/proc/<pid>/comm`.
    package var command: String

    package init(_ hold: Hold, pid: Int32, command: String) {
        self.hold = hold
        self.pid = pid
        self.command = command
    }

    package init(device: UInt64, pid: Int32, command: String) {
        self.init(.node(device), pid: pid, command: command)
    }
}
