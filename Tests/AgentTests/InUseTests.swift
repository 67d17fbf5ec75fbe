@testable import HotplugAgent
import Policy
import Testing

/// Nothing the host uses is taken from it: interfaces that are up, disks that are mounted,
/// swapping or held by device-mapper, nor a group claim-group would take them with.
struct InUseTests {
    let everything = """
        [[policy]]
        name = "everything"
        match.ids = ["*:*"]
        driver = "vfio-pci"
        """

    @Test func aPolicyMatchingEveryDeviceLeavesTheHostNICAndDiskAndSaysWhy() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: everything)
        let lines = try host.planLines()
        #expect(lines.contains("  refused: unbind ice: the host uses it: network interface ens1f0 is up (allow-in-use = true allows it)"))
        #expect(lines.contains("  refused: unbind nvme: the host uses it: block device nvme0n1p1 is mounted on /boot/efi, "
            + "block device nvme0n1p2 is mounted on /, block device nvme0n1p3 is used as swap (allow-in-use = true allows it)"))
        #expect(host.runOnce())
        #expect(host.device("0000:03:00.0")?.driver == "ice")
        #expect(host.device("0000:04:00.0")?.driver == "nvme")
        #expect(!host.history.contains { $0.contains("0000:03:00.0") || $0.contains("0000:04:00.0") })
        #expect(host.addresses { $0.driver == "vfio-pci" }.count == 16)
        #expect(host.addresses { $0.classCode >> 8 == 0x0600 || $0.classCode >> 8 == 0x0604 }.allSatisfy {
            host.device($0)?.override == nil
        })
    }

    @Test func allowInUseTakesTheNICButStillNotTheBootGPU() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: everything + "\nallow-in-use = true")
        #expect(host.runOnce())
        #expect(host.device("0000:03:00.0")?.driver == "vfio-pci")
        #expect(host.device("0000:02:00.0")?.driver == "ast")
    }

    @Test func aGroupWithAnInterfaceThatIsUpIsNotClaimed() throws {
        let host = try SimHost("seed-003-power9.json", policies: """
            [[policy]]
            name = "second-port"
            match.slots = ["0003:01:00.1"]
            driver = "vfio-pci"
            claim-group = true
            """)
        let lines = try host.planLines()
        #expect(lines.contains("  refused: unbind tg3: claim-group would take 0003:01:00.0, which the host uses: "
            + "network interface enP3p1s0f0 is up (allow-in-use = true allows it)"))
        #expect(host.runOnce())
        #expect(host.device("0003:01:00.0")?.driver == "tg3" && host.device("0003:01:00.1")?.driver == "tg3")
    }

    @Test func anInterfaceThatIsDownIsNotInUse() throws {
        let host = try SimHost("seed-003-power9.json", policies: """
            [[policy]]
            name = "second-port"
            match.slots = ["0003:01:00.1"]
            driver = "pci-stub"
            """)
        #expect(host.runOnce())
        #expect(host.device("0003:01:00.1")?.driver == "pci-stub")
        #expect(host.device("0003:01:00.0")?.driver == "tg3")
    }

    @Test func aDiskHeldByDeviceMapperIsInUse() throws {
        let host = try SimHost("seed-003-power9.json", policies: """
            [[policy]]
            name = "sata"
            match.class = ["0106"]
            driver = "vfio-pci"
            """)
        let lines = try host.planLines()
        #expect(lines.contains { $0.contains("block device sda1 is mounted on /boot, block device sda2 is held by dm-0, block device sda2 is held by dm-1") })
        #expect(host.runOnce())
        #expect(host.device("0000:01:00.0")?.driver == "ahci")
    }

    @Test func hostBridgesAreNeverClaimedEither() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: everything)
        #expect(host.runOnce())
        #expect(host.device("0000:00:00.0")?.driver == nil && host.device("0000:00:00.0")?.override == nil)
    }
}
