import HotplugAgent
import HostInterface
import Policy

/// A snapshot of the host's PCI devices and what the agent reads of them, as a host
/// description `simulate --host` can run: so an admin can try policies on a copy of a host.
struct HostRecorder {
    let reader: SysfsReader
    /// Reads files outside sysfs under the root (passwd, group, hostname).
    let readFile: (String) -> String?

    /// Attributes the agent's policies typically read or write.
    static let attributes = ["reset_method", "d3cold_allowed", "power/control"]

    func record() throws(AgentError) -> HostDescription {
        let io = reader.io, paths = reader.paths
        var devices: [HostDescription.Device] = []
        var bound: [String: [PCIID]] = [:]
        var configuresSRIOV = Set<String>()
        for address in try reader.addresses() {
            guard let device = try? reader.device(address) else { continue }
            let chain = ((try? io.readLink(paths.device(address))) ?? "").split(separator: "/").compactMap {
                PCIAddress($0)
            }
            let parent = chain.count >= 2 ? chain[chain.count - 2] : nil
            var attributes: [String: String] = [:]
            for name in Self.attributes {
                if let value = try? io.read(paths.attribute(address, name)) { attributes[name] = firstLine(value) }
            }
            var description = HostDescription.Device(
                address: address.description, id: device.id.description,
                subsystem: device.subsystemID?.description, class: device.classHex,
                parent: parent?.description, iommuGroup: device.iommuGroup, driver: device.driver,
                bootVGA: device.bootVGA ? true : nil, attributes: attributes.isEmpty ? nil : attributes)
            if let config = try? io.readBytes(paths.attribute(address, "config"), offset: 0, count: 4096),
                !config.isEmpty
            {
                description.config = config.map { hex($0, width: 2) }.joined()
                description.configSize = config.count
            }
            if let sriov = reader.sriov(address),
                let offset = try? io.read(paths.attribute(address, "sriov_offset")),
                let stride = try? io.read(paths.attribute(address, "sriov_stride")),
                let vfDevice = try? io.read(paths.attribute(address, "sriov_vf_device"))
            {
                description.sriov = HostDescription.SRIOV(
                    totalVFs: sriov.totalVFs, offset: Int(firstLine(offset)) ?? 1,
                    stride: Int(firstLine(stride)) ?? 1, vfDevice: firstLine(vfDevice),
                    autoprobe: sriov.autoprobe, pfAttributes: nil)
            }
            let use = reader.hostUse(address)
            if !use.interfaces.isEmpty { description.net = use.interfaces }
            if !use.disks.isEmpty { description.block = use.disks }
            if let driver = device.driver, !bound[driver, default: []].contains(device.id) {
                bound[driver, default: []].append(device.id)
            }
            if let driver = device.driver, description.sriov != nil, canConfigureSRIOV(driver) {
                configuresSRIOV.insert(driver)
            }
            devices.append(description)
        }
        // Drivers as far as sysfs shows them: the IDs of the devices each one has, and
        // which are VFIO drivers by the kernel's word (built on vfio-pci-core).
        let vfioDrivers = reader.vfioDrivers().listed
        var drivers = try reader.drivers().sorted().map { name in
            HostDescription.Driver(
                name: name, module: nil, loaded: true, loadable: true,
                ids: name == "pcieport" ? nil : bound[name]?.map(\.description),
                classes: name == "pcieport" ? ["0604"] : nil, sriov: configuresSRIOV.contains(name) ? true : nil,
                vfio: vfioDrivers.contains(name) ? true : nil)
        }
        for name in ["vfio-pci", "pci-stub"] where !drivers.contains(where: { $0.name == name }) {
            drivers.append(
                HostDescription.Driver(
                    name: name, module: nil, loaded: false, loadable: true, ids: nil, classes: nil, sriov: nil))
        }
        let hostname = readFile(paths.under("/proc/sys/kernel/hostname")).map(firstLine) ?? "recorded host"
        var description = HostDescription(
            name: "recorded from \(hostname)", users: accounts(paths.passwd), groups: accounts(paths.groupFile),
            drivers: drivers, devices: devices)
        description.cpu = readFile(paths.under("/proc/cpuinfo")).flatMap(CPUPlatform.init(cpuinfo:))
        // iommufd and the VFIO drivers made for particular devices, as this kernel has them.
        if (try? io.nodeAccess(paths.under("/dev/iommu"))) != nil { description.vfioDeviceNodes = true }
        if let release = reader.kernelRelease() {
            description.kernelRelease = release
            let variants = reader.vfioVariants().aliases.filter { $0.module != "vfio_pci" }
            if !variants.isEmpty { description.vfioAliases = variants.map { "alias \($0.pattern) \($0.module)" } }
        }
        return description
    }

    /// Whether a PF's driver can make VFs through `sriov_numvfs`. The kernel does not say
    /// (the write answers ENOENT when it cannot), so: every driver of an SR-IOV PF but
    /// pci-stub, and vfio-pci only with its `enable_sriov` parameter on.
    func canConfigureSRIOV(_ driver: String) -> Bool {
        if driver == "pci-stub" { return false }
        if reader.vfioDrivers().contains(driver) {
            return (try? reader.io.read(reader.paths.under("/sys/module/vfio_pci/parameters/enable_sriov"))).map(
                firstLine) == "Y"
        }
        return true
    }

    /// `name:x:ID:…` files as name → ID.
    private func accounts(_ file: String) -> [String: UInt32] {
        var table: [String: UInt32] = [:]
        for line in (readFile(file) ?? "").split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count >= 3, let id = UInt32(fields[2]) { table[String(fields[0])] = id }
        }
        return table
    }
}
