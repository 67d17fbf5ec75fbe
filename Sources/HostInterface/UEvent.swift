import Policy

/// A uevent as the agent sees it, whichever source delivered it.
package struct UEvent: Sendable, Equatable {
    package var action: String
    package var subsystem: String
    /// `/devices/pci0000:00/0000:00:01.1/0000:10:00.0`
    package var devpath: String
    /// `DEVNAME` without `/dev/`: `vfio/12`.
    package var devname: String?
    package var properties: [String: String]

    package init(
        action: String, subsystem: String, devpath: String, devname: String? = nil, properties: [String: String] = [:]
    ) {
        self.action = action
        self.subsystem = subsystem
        self.devpath = devpath
        self.devname = devname
        self.properties = properties
    }

    /// The last component of the devpath: a PCI address for the `pci` subsystem.
    package var sysname: Substring { Substring(lastComponent(devpath) ?? "") }

    /// What this event asks to reconcile.
    package enum Target: Equatable {
        case device(PCIAddress)
        case group(Int)
    }

    /// The device or IOMMU group this event names, nil for anything the agent ignores
    /// (`/dev/vfio/vfio`, malformed names). A device's iommufd node (`vfio-dev`) names the
    /// PCI device it belongs to: its devpath's component before `vfio-dev`.
    package var target: Target? {
        switch subsystem {
        case "pci":
            let name = properties["PCI_SLOT_NAME"] ?? String(sysname)
            return PCIAddress(name).map { Target.device($0) }
        case "vfio":
            guard let devname, devname.hasPrefix("vfio/"), let group = Int(devname.dropFirst(5)), group >= 0
            else { return nil }
            return .group(group)
        case "vfio-dev":
            let parts = devpath.split(byte: UInt8(ascii: "/"))
            guard parts.count >= 3, parts[parts.count - 2] == "vfio-dev" else { return nil }
            return PCIAddress(parts[parts.count - 3]).map { Target.device($0) }
        default:
            return nil
        }
    }
}

/// Where events come from: libudev's monitor on a real host, the model on a simulated one.
package protocol EventSource: AnyObject {
    /// Every event that has arrived, without blocking. `overflowed` is set when events were
    /// lost (the socket's buffer ran over), so the caller must look at every device again.
    func drain() -> (events: [UEvent], overflowed: Bool)
}

/// An event source the daemon can sleep on: readable `fileDescriptor` means events wait.
package protocol PollableEventSource: EventSource {
    var fileDescriptor: Int32 { get }
}
