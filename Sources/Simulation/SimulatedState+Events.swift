import HostInterface
import Policy

/// The uevents the simulated kernel sends: pci, vfio and vfio-dev, as the real one words them.
extension SimulatedState {
    /// `/devices/pci0000:00/0000:00:01.1/0000:10:00.0`
    func devpath(_ address: PCIAddress) -> String { devices[address]?.devpath ?? walkDevpath(address) }

    /// The same from its parents, as `insert` keeps it.
    func walkDevpath(_ address: PCIAddress) -> String {
        var chain = [address]
        while let parent = devices[chain[0]]?.parent { chain.insert(parent, at: 0) }
        let top = chain[0]
        return "/devices/pci\(hex(top.domain, width: 4)):\(hex(top.bus, width: 2))/"
            + chain.map(\.description).joined(separator: "/")
    }

    func vfioEvent(_ action: String, _ group: Int) -> UEvent {
        UEvent(
            action: action, subsystem: "vfio", devpath: "/devices/virtual/vfio/\(group)",
            devname: "vfio/\(group)", properties: ["DEVNAME": "/dev/vfio/\(group)"])
    }

    func vfioDeviceEvent(_ action: String, _ address: PCIAddress, _ number: Int) -> UEvent {
        UEvent(
            action: action, subsystem: "vfio-dev", devpath: devpath(address) + "/vfio-dev/vfio\(number)",
            devname: "vfio/devices/vfio\(number)", properties: ["DEVNAME": "/dev/vfio/devices/vfio\(number)"])
    }

    /// The device number of `/dev/vfio/devices/vfioN`, as its `dev` attribute gives it.
    static let vfioDeviceMajor = 511
    static func deviceNodeNumber(_ number: Int) -> UInt64 {
        deviceNumber(major: UInt64(vfioDeviceMajor), minor: UInt64(number))
    }

    func pciEvent(_ action: String, _ address: PCIAddress) -> UEvent {
        guard let device = devices[address] else {
            return UEvent(action: action, subsystem: "pci", devpath: "/devices/\(address)")
        }
        var properties = device.eventVariables
        if let driver = device.driver { properties["DRIVER"] = driver }
        return UEvent(action: action, subsystem: "pci", devpath: device.devpath, properties: properties)
    }

    /// A PCI uevent's variables but `DRIVER`, as the kernel prints them.
    static func eventVariables(of device: Device) -> [String: String] {
        let id = device.id, sub = device.subsystemID ?? PCIID(vendor: 0, device: 0)
        return [
            "PCI_CLASS": String(device.classCode, radix: 16, uppercase: true),
            "PCI_ID": "\(upper(id.vendor, 4)):\(upper(id.device, 4))",
            "PCI_SUBSYS_ID": "\(upper(sub.vendor, 4)):\(upper(sub.device, 4))",
            "PCI_SLOT_NAME": device.address.description,
            "MODALIAS":
                "pci:v\(upper(id.vendor, 8))d\(upper(id.device, 8))sv\(upper(sub.vendor, 8))sd\(upper(sub.device, 8))"
                + "bc\(upper(device.classCode >> 16, 2))sc\(upper((device.classCode >> 8) & 0xff, 2))"
                + "i\(upper(device.classCode & 0xff, 2))"
        ]
    }
}

extension SimulatedState {
    /// The device's `uevent` file: what its uevents carry but the action, in the kernel's
    /// order (the driver, then the bus's variables).
    func ueventText(_ address: PCIAddress) -> String {
        guard let device = devices[address] else { return "" }
        return (device.driver.map { "DRIVER=\($0)\n" } ?? "") + device.ueventBusLines
    }

    /// The bus's variables as the `uevent` file shows them, in the kernel's order.
    static func ueventBusLines(_ variables: [String: String]) -> String {
        ["PCI_CLASS", "PCI_ID", "PCI_SUBSYS_ID", "PCI_SLOT_NAME", "MODALIAS"].reduce(into: "") { text, key in
            if let value = variables[key] { text += key + "=" + value + "\n" }
        }
    }
}

/// `%0*X`, as the kernel prints IDs in uevents.
private func upper(_ value: some BinaryInteger, _ width: Int) -> String {
    hex(value, width: width, uppercase: true)
}
