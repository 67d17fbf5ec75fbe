import HostInterface
import CUdev
import Glibc

/// libudev's monitor, behind the one door where C pointers turn into Swift values: nothing
/// outside this file sees an `OpaquePointer`.
package final class UdevMonitor: PollableEventSource {
    private let udev: OpaquePointer
    private let monitor: OpaquePointer

    /// The socket to poll for readability.
    package let fileDescriptor: Int32

    /// Subscribes to the events udev has processed (`"udev"` source) for `subsystems`, with a
    /// large receive buffer, and starts receiving at once: events that happen while the
    /// caller enumerates devices wait in the socket.
    package init(subsystems: [String], receiveBuffer: Int32 = 128 * 1024 * 1024) throws(Errno) {
        guard let udev = udev_new() else { throw Errno.current }
        guard let monitor = udev_monitor_new_from_netlink(udev, "udev") else {
            let failure = Errno.current
            udev_unref(udev)
            throw failure
        }
        self.udev = udev
        self.monitor = monitor
        for subsystem in subsystems {
            udev_monitor_filter_add_match_subsystem_devtype(monitor, subsystem, nil)
        }
        // Best effort: without CAP_NET_ADMIN the kernel caps it at rmem_max.
        _ = udev_monitor_set_receive_buffer_size(monitor, receiveBuffer)
        let enabled = udev_monitor_enable_receiving(monitor)
        guard enabled >= 0 else { throw Errno(-enabled) }
        fileDescriptor = udev_monitor_get_fd(monitor)
        let flags = fcntl(fileDescriptor, F_GETFL)
        _ = fcntl(fileDescriptor, F_SETFL, flags | O_NONBLOCK)
    }

    deinit {
        udev_monitor_unref(monitor)
        udev_unref(udev)
    }

    package func drain() -> (events: [UEvent], overflowed: Bool) {
        var events: [UEvent] = []
        var overflowed = false
        while true {
            errno = 0
            guard let device = udev_monitor_receive_device(monitor) else {
                if errno == ENOBUFS {
                    overflowed = true
                    continue
                }
                // EAGAIN: nothing left. Anything else (a message libudev dropped) also ends
                // this batch; the socket stays readable if more is waiting.
                break
            }
            events.append(Self.event(from: device))
            udev_device_unref(device)
        }
        return (events, overflowed)
    }

    private static func event(from device: OpaquePointer) -> UEvent {
        var properties: [String: String] = [:]
        var entry = udev_device_get_properties_list_entry(device)
        while let current = entry {
            if let name = udev_list_entry_get_name(current) {
                properties[String(cString: name)] = udev_list_entry_get_value(current).map { String(cString: $0) } ?? ""
            }
            entry = udev_list_entry_get_next(current)
        }
        let devname = properties["DEVNAME"].map { $0.hasPrefix("/dev/") ? String($0.dropFirst(5)) : $0 }
        return UEvent(
            action: udev_device_get_action(device).map { String(cString: $0) } ?? properties["ACTION"] ?? "",
            subsystem: udev_device_get_subsystem(device).map { String(cString: $0) } ?? properties["SUBSYSTEM"] ?? "",
            devpath: udev_device_get_devpath(device).map { String(cString: $0) } ?? properties["DEVPATH"] ?? "",
            devname: devname,
            properties: properties)
    }
}
