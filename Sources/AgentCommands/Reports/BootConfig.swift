import HotplugAgent
import HostInterface
import Policy

/// What keeps host drivers off the devices the policies claim from the first moment of
/// boot: kernel arguments, modprobe.d, and the initramfs module lists (dracut and
/// initramfs-tools), derived from the policies and the devices this host has.
struct BootConfig: Equatable {
    /// vfio-pci IDs and pci-stub IDs, in policy order, then address order.
    var vfioIDs: [PCIID] = []
    var stubIDs: [PCIID] = []
    /// The host drivers those devices have (or came from): softdep'd after vfio-pci.
    var nativeDrivers: [String] = []
    /// Devices claimed for a driver that takes no `ids=` (vendor VFIO variants).
    var otherDrivers: [String] = []
    var notes: [String] = []
    /// The IOMMU's kernel arguments for this host's CPU.
    var iommuArguments: [String]

    init(view: HostView, planner: Planner, platform: CPUPlatform?) {
        iommuArguments = platform?.iommuArguments ?? ["intel_iommu=on", "iommu=pt"]
        if platform == nil {
            notes.append(
                "the CPU is not known: intel_iommu=on is for Intel; AMD needs only iommu=pt, POWER and arm64 nothing")
        }
        var claimed: [(order: Int, address: PCIAddress, device: PCIDevice, driver: String)] = []
        for device in view.devices.values {
            guard let claim = planner.claimedDriver(for: device, in: view) else { continue }
            let order = planner.policies.policies.firstIndex { $0.name == claim.policy.name } ?? .max
            claimed.append((order, device.address, device, claim.driver))
        }
        claimed.sort { ($0.order, $0.address) < ($1.order, $1.address) }
        var natives: [String] = []
        for entry in claimed {
            switch entry.driver {
            case "vfio-pci": if !vfioIDs.contains(entry.device.id) { vfioIDs.append(entry.device.id) }
            case "pci-stub": if !stubIDs.contains(entry.device.id) { stubIDs.append(entry.device.id) }
            default: if !otherDrivers.contains(entry.driver) { otherDrivers.append(entry.driver) }
            }
            let native = entry.device.origin?.driver ?? entry.device.driver
            if entry.driver == "vfio-pci", let native, !view.keepsGroupViable(native), !natives.contains(native) {
                natives.append(native)
            }
        }
        nativeDrivers = natives
        // An ID in ids= takes every device with that ID at boot, claimed or not.
        let claimedAddresses = Set(claimed.map(\.address))
        for (driver, ids) in [("vfio-pci", vfioIDs), ("pci-stub", stubIDs)] {
            for device in view.devices.values.sorted(by: { $0.address < $1.address })
            where ids.contains(device.id) && !claimedAddresses.contains(device.address) {
                notes.append(
                    "\(driver).ids takes \(device.id) at boot also on \(device.address) "
                        + "(\(device.driver ?? "no driver")), which no policy claims"
                )
            }
        }
        for driver in otherDrivers {
            notes.append("\(driver) takes no ids= at boot; the agent binds it once it runs")
        }
    }

    var kernelArguments: [String] {
        var arguments = iommuArguments
        if !vfioIDs.isEmpty {
            arguments += ["vfio-pci.ids=" + vfioIDs.map(\.description).joined(separator: ","), "rd.driver.pre=vfio-pci"]
        }
        if !stubIDs.isEmpty { arguments.append("pci-stub.ids=" + stubIDs.map(\.description).joined(separator: ",")) }
        return arguments
    }

    var modprobeConf: String {
        var lines = ["# Written by hotplug-agent boot-config: keeps host drivers off the devices the policies claim."]
        if !vfioIDs.isEmpty {
            lines.append("options vfio-pci ids=" + vfioIDs.map(\.description).joined(separator: ","))
        }
        if !stubIDs.isEmpty {
            lines.append("options pci-stub ids=" + stubIDs.map(\.description).joined(separator: ","))
        }
        lines += nativeDrivers.map { "softdep \($0) pre: vfio-pci" }
        return lines.joined(separator: "\n") + "\n"
    }

    static let initramfsModules = ["vfio", "vfio_iommu_type1", "vfio_pci"]

    var dracutConf: String {
        "# Written by hotplug-agent boot-config\nforce_drivers+=\" \(Self.initramfsModules.joined(separator: " ")) \"\n"
    }

    var initramfsToolsModules: String { Self.initramfsModules.joined(separator: "\n") + "\n" }

    /// Debian's grub reads /etc/default/grub.d/*.cfg after /etc/default/grub.
    var grubSnippet: String {
        "# Written by hotplug-agent boot-config\nGRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT "
            + "\(kernelArguments.joined(separator: " "))\"\n"
    }

    var text: String {
        var parts = [
            "# Kernel command line:", kernelArguments.joined(separator: " "), "",
            "# /etc/modprobe.d/hotplug-agent.conf", modprobeConf,
            "# /etc/dracut.conf.d/hotplug-agent.conf (Fedora, RHEL, SUSE: then dracut -f)", dracutConf,
            "# /etc/initramfs-tools/modules, added (Debian, Ubuntu: then update-initramfs -u)", initramfsToolsModules
        ]
        if !notes.isEmpty { parts += ["# Notes:"] + notes.map { "# " + $0 } + [""] }
        return parts.joined(separator: "\n")
    }
}

/// The devices the policies claim that are on a VFIO driver now, as a VMM wants them.
enum VMArguments {
    enum Format: String, CaseIterable {
        case qemu, cloudHypervisor = "cloud-hypervisor", libvirt
    }

    static func devices(view: HostView, planner: Planner) -> [PCIDevice] {
        view.devices.values.filter { device in
            view.isVFIO(device.driver) && planner.claimedDriver(for: device, in: view) != nil
        }.sorted { $0.address < $1.address }
    }

    /// `iommufd`: QEMU opens the devices through iommufd (`/dev/iommu` and each device's
    /// own node) instead of the group nodes; QEMU's `vfio-pci` serves every VFIO driver.
    static func render(_ devices: [PCIDevice], as format: Format, iommufd: Bool = false) -> String {
        switch format {
        case .qemu where iommufd:
            guard !devices.isEmpty else { return "" }
            return
                (["-object iommufd,id=iommufd0"]
                + devices.map { "-device vfio-pci,host=\($0.address),iommufd=iommufd0" })
                .joined(separator: " \\\n") + "\n"
        case .qemu:
            return devices.map { "-device vfio-pci,host=\($0.address)" }.joined(separator: " \\\n")
                + (devices.isEmpty ? "" : "\n")
        case .cloudHypervisor:
            return devices.isEmpty
                ? ""
                : "--device " + devices.map { "path=/sys/bus/pci/devices/\($0.address)/" }.joined(separator: " ") + "\n"
        case .libvirt:
            return devices.map { device in
                let a = device.address
                return """
                    <hostdev mode='subsystem' type='pci' managed='no'>
                      <source>
                        <address domain='0x\(hex(a.domain, width: 4))' bus='0x\(hex(a.bus, width: 2))' \
                    slot='0x\(hex(a.device, width: 2))' function='0x\(a.function)'/>
                      </source>
                    </hostdev>

                    """
            }.joined()
        }
    }
}
