import Policy

/// Builds devices and policies for planner tests without any I/O.
enum Fixture {
    static func address(_ text: String) -> PCIAddress { PCIAddress(text)! }

    static func device(_ address: String, _ id: String, class classCode: UInt32 = 0x030000, driver: String? = nil,
                       group: Int? = 1, bootVGA: Bool = false, physfn: String? = nil, pfID: String? = nil,
                       subsystem: String? = nil) -> PCIDevice {
        PCIDevice(address: PCIAddress(address)!, id: PCIID(id)!, subsystemID: subsystem.flatMap { PCIID($0) },
                  classCode: classCode, driver: driver, bootVGA: bootVGA, iommuGroup: group,
                  physfn: physfn.flatMap { PCIAddress($0) }, pfID: pfID.flatMap { PCIID($0) })
    }

    static func policies(_ toml: String) -> PolicySet {
        let parsed = PolicyParser(accounts: TestAccounts()).parse(toml, file: "test.toml")
        precondition(parsed.errors.isEmpty, "\(parsed.errors)")
        return PolicySet(parsed.policies)
    }

    static func view(_ devices: [PCIDevice], drivers: Set<String> = ["vfio-pci", "pci-stub", "pcieport"],
                     nodes: [Int: NodeState] = [:]) -> HostView {
        HostView(devices: devices, drivers: drivers, vfioNodes: nodes)
    }
}
