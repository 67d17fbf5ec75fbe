import HostInterface
@testable import AgentCommands
@testable import HotplugAgent
@testable import Simulation
import Glibc
import Policy
import Testing

/// `driver = "vfio"`: the VFIO driver made for the device, as the running kernel's
/// `modules.alias` declares it, or vfio-pci.
struct VariantDriverTests {
    static let mlx5Alias = "alias vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i* mlx5_vfio_pci"

    /// Seed 000 whose ConnectX-7 PFs make VFs (15b3:101e), with mlx5_vfio_pci installed.
    func host(aliases: [String], policies: String) throws -> SimHost {
        var description = try SimHost.load("seed-000-mi300x.json")
        description.kernelRelease = "6.12.0-test"
        description.vfioAliases = aliases
        let index = try #require(description.drivers.firstIndex { $0.name == "mlx5_core" })
        description.drivers[index].sriov = true
        description.drivers.append(
            HostDescription.Driver(
                name: "mlx5_vfio_pci", module: "mlx5_vfio_pci", loaded: false,
                loadable: true, ids: nil, classes: nil, sriov: nil))
        let pf = try #require(description.devices.firstIndex { $0.address == "0000:13:00.0" })
        description.devices[pf].sriov = HostDescription.SRIOV(
            totalVFs: 2, offset: 1, stride: 1, vfDevice: "101e", autoprobe: true, pfAttributes: nil)
        return try SimHost(description, policies: policies)
    }

    static let policies = """
        [[policy]]
        name = "cx7-pf"
        match.slots = ["0000:13:00.0"]
        sriov.autoprobe = false
        sriov.num-vfs = 1
        [[policy]]
        name = "cx7-vfs"
        match.pf-ids = ["15b3:1021"]
        driver = "vfio"
        [[policy]]
        name = "gpus"
        match.ids = ["1002:74a1"]
        driver = "vfio"
        """

    @Test func aConnectXVFGoesToMlx5VfioPciAndAGPUWithoutAVariantToVfioPci() throws {
        let host = try host(aliases: [Self.mlx5Alias], policies: Self.policies)
        #expect(host.runOnce())
        let vf = try #require(host.addresses { $0.physfn == PCIAddress("0000:13:00.0") }.first)
        #expect(host.device(vf)?.driver == "mlx5_vfio_pci")
        #expect(host.addresses { $0.id.device == 0x74a1 }.allSatisfy { host.device($0)?.driver == "vfio-pci" })
        #expect(
            host.log.containing("[cx7-vfs] load module mlx5_vfio_pci: driver mlx5_vfio_pci is not registered").count
                == 1)
        #expect(
            host.log.containing(
                "[cx7-vfs] bind to mlx5_vfio_pci (now unbound): policy \"cx7-vfs\" wants vfio: the VFIO driver made "
                    + "for it: mlx5_vfio_pci declares vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i*"
            ).count == 1)
        #expect(
            host.log.containing(
                "[gpus] bind to vfio-pci (now unbound): policy \"gpus\" wants vfio: no VFIO driver is made for it (no "
                    + "vfio_pci alias names it)"
            ).count >= 1)
        // Settled: a device on its variant stays there.
        let history = host.history
        #expect(host.runOnce())
        #expect(host.history == history)
    }

    @Test func withoutTheAliasTheVFGoesToVfioPci() throws {
        let host = try host(aliases: [], policies: Self.policies)
        #expect(host.runOnce())
        let vf = try #require(host.addresses { $0.physfn == PCIAddress("0000:13:00.0") }.first)
        #expect(host.device(vf)?.driver == "vfio-pci")
    }

    @Test func theMostSpecificAliasWinsAndHostDriverAliasesAreIgnored() {
        let text = """
            alias pci:v000015B3d0000101Esv*sd*bc*sc*i* mlx5_core
            alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci
            alias vfio_pci:v000015B3d*sv*sd*bc*sc*i* generic_vendor_vfio_pci
            alias vfio_pci:v000015B3d0000101Esv*sd*bc*sc*i* mlx5_vfio_pci
            alias nonsense
            """
        let variants = VFIOVariants(
            aliases: VFIOVariants.parse(modulesAlias: text), driversOfModules: ["vfio_pci": "vfio-pci"])
        #expect(variants.aliases.map(\.module) == ["vfio_pci", "generic_vendor_vfio_pci", "mlx5_vfio_pci"])
        let vf = PCIDevice(
            address: PCIAddress("0000:13:00.1")!, id: PCIID("15b3:101e")!, subsystemID: PCIID("15b3:0041")!,
            classCode: 0x020000)
        #expect(vf.modalias == "pci:v000015B3d0000101Esv000015B3sd00000041bc02sc00i00")
        #expect(variants.choose(for: vf).driver == "mlx5_vfio_pci")
        var other = vf
        other.id = PCIID("15b3:1021")!
        #expect(variants.choose(for: other).driver == "generic_vendor_vfio_pci")
        var gpu = vf
        gpu.id = PCIID("1002:74a1")!
        gpu.subsystemID = PCIID("1002:0000")!
        gpu.classCode = 0x120000
        #expect(gpu.modalias == "pci:v00001002d000074A1sv00001002sd00000000bc12sc00i00")
        #expect(
            variants.choose(for: gpu) == (
                "vfio-pci", "vfio_pci", "no VFIO driver is made for it (no vfio_pci alias names it)"
            ))
        gpu.subsystemID = nil
        #expect(variants.choose(for: gpu).driver == "vfio-pci")
    }

    @Test func driverVfioParsesAndAPolicyKeepsWhatItMovedUnderMatchDriver() {
        let parsed = PolicyParser(accounts: TableAccounts(users: [:], groups: [:])).parse(
            """
            [[policy]]
            name = "p"
            match.driver = ["mlx5_core"]
            driver = "vfio"
            """, file: "p.toml")
        #expect(parsed.errors.isEmpty && parsed.policies.first?.driver == .vfio)
        var device = PCIDevice(
            address: PCIAddress("0000:13:00.1")!, id: PCIID("15b3:101e")!, classCode: 0x020000, driver: "mlx5_vfio_pci")
        #expect(parsed.policies[0].match.holds(for: device, ownDriver: .vfio))
        device.driver = "e1000e"
        #expect(!parsed.policies[0].match.holds(for: device, ownDriver: .vfio))
    }

    /// modalias is made from the IDs as the kernel makes it. Where a uevent does not name
    /// the subsystem IDs (the kernel's always does; a hand-made test bed may not), they come
    /// from the attribute files, never taken as none: a `match.subsystem-ids` policy would
    /// pass the device over, and the CDI names after it would move to other devices. Where
    /// the files do not show them either, the device is not read (named, never guessed).
    @Test func subsystemIDsComeFromTheUeventOrTheFilesAndAreNeverTakenAsNone() throws {
        let tree = try FakeSysfs()
        try tree.device("0000:13:00.1", id: "15b3:101e", class: "0x020000")
        try tree.file("/sys/bus/pci/devices/0000:13:00.1/modalias", "pci:vOTHER\n")
        try tree.device("0000:13:00.2", id: "15b3:101e", class: "0x020000")
        let uevent = "PCI_CLASS=20000\nPCI_ID=15B3:101E\nPCI_SLOT_NAME=0000:13:00.2\n"
            + "MODALIAS=pci:v000015B3d0000101Esv000015B3sd00000041bc02sc00i00\n"
        try tree.file("/sys/bus/pci/devices/0000:13:00.2/uevent", uevent)
        try tree.file("/sys/bus/pci/devices/0000:13:00.2/subsystem_device", "0x0041\n")
        let paths = HostPaths(root: tree.root)
        let reader = SysfsReader(io: RealKernelIO(paths: paths), paths: paths)
        let shown = try reader.device(PCIAddress("0000:13:00.1")!)
        #expect(shown.modalias == "pci:v000015B3d0000101Esv000015B3sd00000001bc02sc00i00")
        let fromFiles = try reader.device(PCIAddress("0000:13:00.2")!)
        #expect(fromFiles.subsystemID == PCIID("15b3:0041"))
        #expect(fromFiles.modalias == "pci:v000015B3d0000101Esv000015B3sd00000041bc02sc00i00")
        let variants = VFIOVariants(aliases: VFIOVariants.parse(modulesAlias: Self.mlx5Alias), driversOfModules: [:])
        #expect(variants.choose(for: fromFiles).driver == "mlx5_vfio_pci")
        // Shown nowhere: not read.
        try tree.device("0000:13:00.3", id: "15b3:101e", class: "0x020000")
        try tree.file("/sys/bus/pci/devices/0000:13:00.3/uevent", uevent)
        #expect(unlink(tree.path("/sys/bus/pci/devices/0000:13:00.3/subsystem_vendor")) == 0)
        #expect {
            _ = try reader.device(PCIAddress("0000:13:00.3")!)
        } throws: { error in
            guard case .malformed(let path, _, let expected) = error as? AgentError else { return false }
            return path.hasSuffix("0000:13:00.3/uevent") && expected.contains("PCI_SUBSYS_ID")
        }
    }

}

/// The commands that look at drivers know a VFIO driver by the kernel's word where it
/// has one: the modules built on vfio-pci-core, whatever their names.
struct KernelVFIODriverTests {
    @Test func aDriverBuiltOnVfioPciCoreKeepsItsGroupViableInList() throws {
        var description = try SimHost.load("seed-000-mi300x.json")
        description.drivers.append(
            HostDescription.Driver(
                name: "acme_passthrough", module: "acme_passthrough", loaded: true,
                loadable: true, ids: nil, classes: nil, sriov: nil, vfio: true))
        let index = try #require(description.devices.firstIndex { $0.address == "0000:12:00.0" })
        description.devices[index].driver = "acme_passthrough"
        let host = try SimHost(description, policies: "")
        let view = try host.reader.fullView()
        #expect(view.vfio.listed.contains("acme_passthrough") && view.vfio.listed.contains("vfio-pci") == false)
        #expect(view.isVFIO("acme_passthrough") && !VFIODrivers().contains("acme_passthrough"))
        let group = try #require(host.device("0000:12:00.0")?.group)
        let listing = HostListing(view)
        #expect(listing.groups.first { $0.group == group }?.viable == true)
        #expect(
            try HostRecorder(reader: host.reader, readFile: { _ in nil }).record().drivers.first {
                $0.name == "acme_passthrough"
            }?.vfio == true)
    }
}
