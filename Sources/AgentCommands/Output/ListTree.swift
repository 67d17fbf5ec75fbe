import HotplugAgent
import HostInterface
import Glibc
import Policy

/// The PCI tree as `list` draws it: each root bus, the bridges below it, and each device
/// with its IOMMU group (and whether the group is viable for VFIO), driver, override,
/// PF/VF relation, boot VGA mark and matching policy.
struct ListTree {
    let view: HostView
    /// Each device's upstream bridge, from the real path of its sysfs directory.
    let parents: [PCIAddress: PCIAddress]
    /// `pci0000:00` for devices on a root bus.
    let rootBuses: [PCIAddress: String]
    let policies: [PCIAddress: String]
    let colour: Bool

    init(view: HostView, reader: SysfsReader, planner: Planner?, colour: Bool) {
        self.view = view
        self.colour = colour
        var parents: [PCIAddress: PCIAddress] = [:], roots: [PCIAddress: String] = [:]
        for address in view.devices.keys {
            let link = (try? reader.io.readLink(reader.paths.device(address))) ?? ""
            let components = link.split(byte: UInt8(ascii: "/"))
            let chain = components.compactMap { PCIAddress($0) }
            if chain.count >= 2, let parent = chain.dropLast().last, view.devices[parent] != nil {
                parents[address] = parent
            } else {
                roots[address] =
                    components.first { $0.hasPrefix("pci") }.map { escapingControlCharacters(String($0)) }
                    ?? "pci\(hex(address.domain, width: 4)):\(hex(address.bus, width: 2))"
            }
        }
        self.parents = parents
        rootBuses = roots
        var policies: [PCIAddress: String] = [:]
        if let planner {
            for device in view.devices.values {
                if let governing = planner.governingPolicy(for: device, in: view) {
                    policies[device.address] = governing.policy.name + (governing.via != nil ? " (group)" : "")
                }
            }
        }
        self.policies = policies
    }

    static var terminalWantsColour: Bool {
        isatty(1) != 0 && getenv("NO_COLOR") == nil && (getenvString("TERM") ?? "dumb") != "dumb"
    }

    var lines: [String] {
        var lines: [String] = []
        let children = Dictionary(grouping: parents.keys, by: { parents[$0]! })
        func draw(_ address: PCIAddress, prefix: String, last: Bool) {
            lines.append(prefix + (last ? "└─ " : "├─ ") + line(for: view.devices[address]!))
            let below = (children[address] ?? []).sorted()
            for (index, child) in below.enumerated() {
                draw(child, prefix: prefix + (last ? "   " : "│  "), last: index == below.count - 1)
            }
        }
        if view.groupNumbers.isEmpty { lines.append("(no IOMMU groups: is the IOMMU enabled?)") }
        for bus in Set(rootBuses.values).sorted() {
            lines.append(paint(bus, "1"))
            let top = rootBuses.filter { $0.value == bus }.map(\.key).sorted()
            for (index, address) in top.enumerated() { draw(address, prefix: "", last: index == top.count - 1) }
        }
        return lines
    }

    private func line(for device: PCIDevice) -> String {
        var parts = ["\(device.address) [\(device.id)] \(device.classHex)"]
        // Names from sysfs are escaped before any colour is added.
        let driver = escapingControlCharacters(device.driver ?? "no driver")
        parts.append(view.isVFIO(device.driver) ? paint(driver, "32") : device.isBridge ? paint(driver, "2") : driver)
        if let override = device.driverOverride { parts.append("override \(escapingControlCharacters(override))") }
        if let physfn = device.physfn { parts.append("VF of \(physfn)") }
        if device.bootVGA { parts.append(paint("boot VGA", "33")) }
        if let group = device.iommuGroup {
            let viable = view.members(of: group).allSatisfy { view.keepsGroupViable($0.driver) }
            parts.append("group \(group)" + (viable ? "" : " " + paint("(not viable now)", "31")))
        }
        if let policy = policies[device.address] { parts.append(paint("policy \(policy)", "36")) }
        return parts.joined(separator: "  ")
    }

    private func paint(_ text: String, _ code: String) -> String {
        colour ? "\u{1b}[\(code)m\(text)\u{1b}[0m" : text
    }
}
