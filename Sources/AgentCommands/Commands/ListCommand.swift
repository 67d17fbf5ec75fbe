import HotplugAgent
import HostInterface
import ArgumentParser
import FoundationEssentials
import Policy

struct ListCommand<Lab: Laboratory>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "list", abstract: "List PCI devices by IOMMU group, with drivers and VFIO viability.")
    }

    @OptionGroup var global: GlobalOptions
    @OptionGroup var policy: PolicyOptions

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @OptionGroup var source: HostSourceOptions

    func run() throws {
        let context = HostContext(global)
        let (reader, accounts, _) = try source.open(context, lab: Lab.self)
        let view = try reader.fullViewOrExit()
        // The matching policies, when they load; list works without them.
        let (policies, errors, _) = PolicyLoader(paths: context.paths, accounts: accounts).load(
            directories: policy.chosen)
        let planner = errors.isEmpty ? Planner(policies: policies) : nil
        if json {
            output(HostListing(view, planner: planner).json)
        } else {
            let tree = ListTree(view: view, reader: reader, planner: planner, colour: ListTree.terminalWantsColour)
            output(tree.lines.joined(separator: "\n"))
            for error in errors { LineLogHandler.error("\(error)") }
        }
    }
}

/// Devices grouped by IOMMU group, each group with its viability for VFIO.
package struct HostListing: Encodable {
    struct Group: Encodable {
        var group: Int
        var viable: Bool
        /// Members that hold the group from VFIO: on a driver other than VFIO, pci-stub or pcieport.
        var blockers: [String]
        var node: Node?
        var devices: [Device]
    }

    struct Node: Encodable {
        var uid: UInt32
        var gid: UInt32
        var mode: String
    }

    struct Device: Encodable {
        var address: String
        var id: String
        var `class`: String
        var driver: String?
        var override: String?
        var physfn: String?
        var bootVGA: Bool
        var policy: String?

        init(_ device: PCIDevice, policy: String? = nil) {
            self.policy = policy
            address = device.address.description
            id = device.id.description
            self.class = device.classHex
            driver = device.driver
            override = device.driverOverride
            physfn = device.physfn?.description
            bootVGA = device.bootVGA
        }

        enum CodingKeys: String, CodingKey {
            case address, id, `class`, driver, override, physfn, policy
            case bootVGA = "boot_vga"
        }

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(address, forKey: .address)
            try container.encode(id, forKey: .id)
            try container.encode(self.class, forKey: .class)
            try container.encode(driver, forKey: .driver)
            try container.encode(override, forKey: .override)
            try container.encode(physfn, forKey: .physfn)
            try container.encode(bootVGA, forKey: .bootVGA)
            try container.encode(policy, forKey: .policy)
        }

        var line: String {
            var parts = ["\(address) [\(id)] \(self.class)", driver.map { "driver \($0)" } ?? "no driver"]
            if let override { parts.append("override \(override)") }
            if let physfn { parts.append("VF of \(physfn)") }
            if bootVGA { parts.append("boot VGA") }
            return parts.joined(separator: ", ")
        }
    }

    var groups: [Group]
    var ungrouped: [Device]

    package init(_ view: HostView, planner: Planner? = nil) {
        let policyOf = { (device: PCIDevice) in planner?.governingPolicy(for: device, in: view)?.policy.name }
        let describe = { (device: PCIDevice) in Device(device, policy: policyOf(device)) }
        groups = view.groupNumbers.map { number in
            let members = view.members(of: number)
            let blockers = members.filter { !view.keepsGroupViable($0.driver) }.map(\.address.description)
            let node = view.vfioNodes[number].map { Node(uid: $0.uid, gid: $0.gid, mode: octal($0.mode)) }
            return Group(
                group: number, viable: blockers.isEmpty, blockers: blockers, node: node, devices: members.map(describe))
        }
        ungrouped = view.devices.values.filter { $0.iommuGroup == nil }.sorted { $0.address < $1.address }.map(describe)
    }

    package var text: [String] {
        var lines: [String] = []
        for group in groups {
            // As the drivers are now; `doctor` judges the group as the policies will leave it.
            let viability =
                group.viable
                ? "viable for VFIO now" : "not viable for VFIO now (held by \(group.blockers.joined(separator: ", ")))"
            let node = group.node.map { ", /dev/vfio/\(group.group) \($0.uid):\($0.gid) \($0.mode)" } ?? ""
            lines.append("IOMMU group \(group.group): \(viability)\(node)")
            lines += group.devices.map { "  " + $0.line }
        }
        if !ungrouped.isEmpty {
            lines.append(groups.isEmpty ? "No IOMMU groups (is the IOMMU enabled?)" : "No IOMMU group")
            lines += ungrouped.map { "  " + $0.line }
        }
        return lines.map(escapingControlCharacters)
    }

    var json: String { prettyJSON(self) }
}
