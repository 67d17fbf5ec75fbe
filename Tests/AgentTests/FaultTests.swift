import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Policy
import Testing

/// Faults injected into the simulated kernel: refused probes and failing writes.
struct FaultTests {
    let nic = "0000:13:00.0"

    func seed000() throws -> SimHost {
        try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
    }

    @Test func aProbeThatFailsPutsTheDeviceBackOnItsDriver() throws {
        let host = try seed000()
        host.kernel.injectProbeFailure(PCIAddress(nic)!, "vfio-pci", .EIO)
        #expect(!host.runOnce())
        let device = try #require(host.device(nic))
        #expect(device.driver == "mlx5_core" && device.override == nil)
        #expect(Array(host.history.filter { $0.contains(nic) }) == ["unbind \(nic) mlx5_core", "bind \(nic) mlx5_core"])
        let line = try #require(host.log.containing("error: \(nic) [connectx-7] failed: bind to vfio-pci").first)
        #expect(
            line.hasSuffix("did not bind to vfio-pci (driver now: none); see the kernel log; put back on mlx5_core"))
        // The other fifteen are claimed all the same.
        #expect(host.addresses { $0.driver == "vfio-pci" }.count == 15)
    }

    @Test func aRetryAfterTheFaultClearsSucceeds() throws {
        let host = try seed000()
        host.kernel.injectProbeFailure(PCIAddress(nic)!, "vfio-pci", .EIO)
        #expect(!host.runOnce())
        host.kernel.injectProbeFailure(PCIAddress(nic)!, "vfio-pci", nil)
        // Re-plugged, the device is tried again.
        host.kernel.unplug(PCIAddress(nic)!)
        try host.plugAgain(nic)
        host.deliverEvents()
        #expect(host.device(nic)?.driver == "vfio-pci")
    }

    @Test func eagainIsTriedOnceMore() throws {
        let host = try seed000()
        host.kernel.injectWriteFailure(endingIn: "/drivers_probe", .EAGAIN, times: 1)
        #expect(host.runOnce())
        #expect(host.addresses { $0.driver == "vfio-pci" }.count == 16)
    }

    @Test func aFailedDeviceIsNotRetriedUntilItChanges() throws {
        let host = try seed000()
        host.kernel.injectWriteFailure(endingIn: "\(nic)/driver_override", .EBUSY, times: 1)
        #expect(!host.runOnce())
        #expect(
            host.log.containing(
                "failed: bind to vfio-pci (now on mlx5_core): write \"vfio-pci\" to "
                    + "/sys/bus/pci/devices/\(nic)/driver_override: Device or resource busy (EBUSY)"
            ).count == 1)
        #expect(host.device(nic)?.driver == "mlx5_core")
        // An event that changes nothing does not retry it...
        let change = UEvent(action: "change", subsystem: "pci", devpath: "/devices/x/\(nic)")
        host.agent.handle(([change], false))
        #expect(host.device(nic)?.driver == "mlx5_core")
        // ...a change of the device does.
        try host.kernel.write("/sys/bus/pci/drivers/mlx5_core/unbind", nic)
        host.deliverEvents()
        #expect(host.device(nic)?.driver == "vfio-pci")
    }

    @Test func aRestoreDoesNotRetryItselfForever() throws {
        let host = try seed000()
        host.kernel.injectProbeFailure(PCIAddress(nic)!, "vfio-pci", .EIO)
        #expect(!host.runOnce())
        for _ in 0..<5 { host.deliverEvents() }
        #expect(host.history.filter { $0.contains(nic) }.count == 2)
        #expect(host.kernel.drain().events.isEmpty)
    }

    @Test(arguments: [Errno.EIO, .EINVAL, .ENOSPC, .EPERM, .EACCES])
    func everyOtherErrnoFailsWithItsNameAndLeavesTheDeviceWhereItWas(errno: Errno) throws {
        let host = try seed000()
        host.kernel.injectWriteFailure(endingIn: "/drivers/mlx5_core/unbind", errno, times: 100)
        #expect(!host.runOnce())
        #expect(host.addresses { $0.driver == "mlx5_core" }.count == 8)
        #expect(host.log.containing("(\(errno.name))").count == 8)
        #expect(host.addresses { $0.id.vendor == 0x1002 && $0.driver == "vfio-pci" }.count == 8)
    }

    /// `sriov_numvfs` answers ENOENT when the PF's driver cannot configure SR-IOV, with the
    /// device still there: a failure, not a device that left (found on a real kernel).
    @Test func enoentFromAPFThatIsStillThereIsAFailure() throws {
        let host = try SimHost(
            "seed-002-flex.json",
            policies: """
                [[policy]]
                name = "stub-pf"
                match.ids = ["8086:56c0"]
                match.vf = false
                driver = "pci-stub"
                allow-boot-vga = true
                sriov.num-vfs = 2
                """)
        #expect(!host.runOnce())
        #expect(host.device("0000:4d:00.0")?.driver == "pci-stub")
        #expect(
            host.log.containing(
                "[stub-pf] failed: set sriov_numvfs to 2: write \"2\\n\" to "
                    + "/sys/bus/pci/devices/0000:4d:00.0/sriov_numvfs: No such file or directory (ENOENT)"
            ).count == 1)
        #expect(host.log.containing("left during").isEmpty)
    }
}
