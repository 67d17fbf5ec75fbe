import Glibc
import Foundation
import HostInterface
@testable import AgentCommands
@testable import HotplugAgent
@testable import Simulation
import Policy
import Testing

struct BootConfigTests {
    func config(_ host: SimHost, cpu: CPUPlatform? = .amd) throws -> BootConfig {
        BootConfig(view: try host.agent.plannedView(), planner: host.agent.planner, platform: cpu)
    }

    /// The IOMMU's arguments for the CPU the host has, from /proc/cpuinfo.
    @Test func theIOMMUArgumentsFollowTheCPU() throws {
        #expect(CPUPlatform(cpuinfo: "processor\t: 0\nvendor_id\t: AuthenticAMD\n") == .amd)
        #expect(CPUPlatform(cpuinfo: "processor\t: 0\nvendor_id\t: GenuineIntel\n") == .intel)
        #expect(
            CPUPlatform(cpuinfo: "processor\t: 0\ncpu\t\t: POWER9 (raw), altivec supported\nplatform\t: PowerNV\n")
                == .power)
        #expect(CPUPlatform(cpuinfo: "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n") == .arm64)
        #expect(CPUPlatform(cpuinfo: "") == nil)
        let host = try SimHost("seed-004-x570.json", policies: try SimHost.examplePolicy("seed-004"))
        #expect(
            try config(host, cpu: .amd).kernelArguments.prefix(2) == [
                "iommu=pt", "vfio-pci.ids=1002:73bf,1002:ab28,8086:1539"
            ])
        #expect(try config(host, cpu: .intel).kernelArguments.prefix(2) == ["intel_iommu=on", "iommu=pt"])
        #expect(try config(host, cpu: .power).kernelArguments.first == "vfio-pci.ids=1002:73bf,1002:ab28,8086:1539")
        #expect(try !config(host, cpu: .amd).kernelArguments.contains("amd_iommu=on"))
        let unknown = try config(host, cpu: nil)
        #expect(unknown.kernelArguments.prefix(2) == ["intel_iommu=on", "iommu=pt"])
        #expect(unknown.notes.contains { $0.hasPrefix("the CPU is not known") })
        // A recorded host carries its CPU to boot-config --host.
        let recorded = try Binary.run([
            "boot-config", "--host", repository.appendingPathComponent("hosts/seed-003-power9.json").path,
            "--policy-dir", repository.appendingPathComponent("rules/examples/seed-003").path
        ])
        #expect(
            recorded.stdout.hasPrefix("# Kernel command line:\nvfio-pci.ids=10de:15f9 rd.driver.pre=vfio-pci\n"),
            "\(recorded.stdout)")
    }

    @Test func theDesktopGetsTheSeedsIDsAndItsUSBOnPCIStub() throws {
        let host = try SimHost("seed-004-x570.json", policies: try SimHost.examplePolicy("seed-004"))
        let boot = try config(host)
        #expect(
            boot.kernelArguments == [
                "iommu=pt", "vfio-pci.ids=1002:73bf,1002:ab28,8086:1539",
                "rd.driver.pre=vfio-pci", "pci-stub.ids=1002:73a6,1002:73a4"
            ])
        #expect(
            boot.modprobeConf == """
                # Written by hotplug-agent boot-config: keeps host drivers off the devices the policies claim.
                options vfio-pci ids=1002:73bf,1002:ab28,8086:1539
                options pci-stub ids=1002:73a6,1002:73a4
                softdep amdgpu pre: vfio-pci
                softdep snd_hda_intel pre: vfio-pci
                softdep igb pre: vfio-pci

                """)
        // The seed's own list has this trap: the boot W6600's HDMI audio shares the ID.
        #expect(
            boot.notes == [
                "vfio-pci.ids takes 1002:ab28 at boot also on 0000:09:00.1 (snd_hda_intel), which no policy claims"
            ])
        // After the agent ran, the devices' origins still name their host drivers.
        #expect(host.runOnce())
        #expect(try config(host).modprobeConf == boot.modprobeConf)
    }

    @Test func writeLaysOutTheFilesForADebianHost() throws {
        let tree = try FakeSysfs()
        try tree.file("/etc/os-release", "PRETTY_NAME=\"Debian\"\nID=debian\n")
        try tree.mkdir("/etc/initramfs-tools")
        try tree.file("/etc/initramfs-tools/modules", "# List of modules\nvfio\n")
        let host = try SimHost("seed-004-x570.json", policies: try SimHost.examplePolicy("seed-004"))
        let said = try BootConfigWriter(paths: HostPaths(root: tree.root)).write(try config(host))
        #expect(
            said == [
                "wrote /etc/modprobe.d/hotplug-agent.conf", "wrote /etc/default/grub.d/hotplug-agent.cfg",
                "added vfio_iommu_type1 vfio_pci to /etc/initramfs-tools/modules",
                "next: update-initramfs -u && update-grub, then reboot"
            ])
        #expect(
            try tree.read("/etc/initramfs-tools/modules") == "# List of modules\nvfio\nvfio_iommu_type1\nvfio_pci\n")
        #expect(
            try tree.read("/etc/default/grub.d/hotplug-agent.cfg").contains(
                "vfio-pci.ids=1002:73bf,1002:ab28,8086:1539"))
    }

    /// What the writer keeps of a file is read inside the root, as root reads what it acts
    /// on: a tree's `modules` linked absolutely to this host's `/etc/shadow` was read through
    /// the link and written into the tree, world-readable (found by this round's attacker).
    @Test func aFileItKeepsIsReadInsideTheRoot() throws {
        let tree = try FakeSysfs(), outside = try FakeSysfs()
        try outside.file("/secret", "root:SECRET:19000::::::\n")
        chmod(outside.path("/secret"), 0o600)
        try tree.file("/etc/os-release", "ID=debian\n")
        try tree.mkdir("/etc/initramfs-tools")
        try tree.file("/etc/initramfs-tools/modules.real", "# the tree's own\n")
        try tree.link("/etc/initramfs-tools/modules", to: outside.path("/secret"))
        let host = try SimHost("seed-004-x570.json", policies: try SimHost.examplePolicy("seed-004"))
        _ = try? BootConfigWriter(paths: HostPaths(root: tree.root)).write(try config(host))
        #expect(!((try? tree.read("/etc/initramfs-tools/modules")) ?? "").contains("SECRET"))
        // A link that stays in the tree as its `/` is followed there.
        try FileManager.default.removeItem(atPath: tree.path("/etc/initramfs-tools/modules"))
        try tree.link("/etc/initramfs-tools/modules", to: "/etc/initramfs-tools/modules.real")
        _ = try BootConfigWriter(paths: HostPaths(root: tree.root)).write(try config(host))
        #expect(try tree.read("/etc/initramfs-tools/modules").hasPrefix("# the tree's own\nvfio\n"))
    }

    @Test func aFedoraHostGetsDracutAndGrubby() throws {
        let tree = try FakeSysfs()
        try tree.file("/etc/os-release", "ID=fedora\n")
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        let said = try BootConfigWriter(paths: HostPaths(root: tree.root)).write(try config(host, cpu: .intel))
        #expect(
            said.last
                == "next: dracut -f && grubby --update-kernel=ALL --args=\"intel_iommu=on iommu=pt "
                    + "vfio-pci.ids=1002:74a1,15b3:1021 rd.driver.pre=vfio-pci\", then reboot"
        )
        #expect(
            try tree.read("/etc/dracut.conf.d/hotplug-agent.conf").contains(
                "force_drivers+=\" vfio vfio_iommu_type1 vfio_pci \""))
    }
}

struct VMArgsTests {
    @Test func eachFormatForTheClaimedDevicesOfSeed000() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        let planner = host.agent.planner
        #expect(VMArguments.devices(view: try host.reader.fullView(), planner: planner).isEmpty)
        #expect(host.runOnce())
        let devices = VMArguments.devices(view: try host.reader.fullView(), planner: planner)
        #expect(devices.count == 16)
        let qemu = VMArguments.render(devices, as: .qemu)
        #expect(qemu.hasPrefix("-device vfio-pci,host=0000:12:00.0 \\\n-device vfio-pci,host=0000:13:00.0 \\\n"))
        #expect(qemu.split(separator: "\n").count == 16)
        let ch = VMArguments.render(devices, as: .cloudHypervisor)
        #expect(
            ch.hasPrefix("--device path=/sys/bus/pci/devices/0000:12:00.0/ path=/sys/bus/pci/devices/0000:13:00.0/ "))
        #expect(ch.components(separatedBy: "path=").count == 17)
        let libvirt = VMArguments.render(devices, as: .libvirt)
        #expect(
            libvirt.hasPrefix(
                """
                <hostdev mode='subsystem' type='pci' managed='no'>
                  <source>
                    <address domain='0x0000' bus='0x12' slot='0x00' function='0x0'/>
                  </source>
                </hostdev>
                """))
        #expect(libvirt.components(separatedBy: "<hostdev").count == 17)
    }
}
