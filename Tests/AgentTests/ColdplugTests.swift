import Foundation
import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Policy
import Testing

struct ColdplugTests {
    @Test func seed000ClaimsAllSixteenDevicesAndOwnsTheirNodes() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        let before = host.kernel.inspect { $0.devices }
        #expect(host.runOnce())

        let claimed = host.addresses { $0.id.vendor == 0x1002 || $0.id.vendor == 0x15b3 }
        #expect(claimed.count == 16)
        for address in claimed {
            let device = try #require(host.device(address))
            #expect(device.driver == "vfio-pci", "\(address)")
            let node = try #require(host.node(device.group!), "\(address) has no /dev/vfio node")
            #expect(node.uid == 1000 && node.gid == 993 && node.mode == 0o660, "\(address)")
        }
        // Bridges and the host's own devices: same driver, no override, never unbound.
        for (address, old) in before where !claimed.contains(address.description) {
            let now = try #require(host.device(address.description))
            #expect(now.driver == old.driver && now.override == nil, "\(address) was touched")
            #expect(
                !host.history.contains { $0.hasSuffix("\(address) \(old.driver ?? "-")") && $0.hasPrefix("unbind") })
        }
        // The NICs came from mlx5_core: unbound once each, bound to vfio-pci once each.
        #expect(host.history.filter { $0.hasPrefix("unbind") && $0.hasSuffix("mlx5_core") }.count == 8)
        #expect(host.history.filter { $0.hasSuffix("vfio-pci") && $0.hasPrefix("bind") }.count == 16)
        #expect(host.agent.failureCount == 0)
    }

    @Test func aSecondRunFindsNothingToDo() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        #expect(host.runOnce())
        let history = host.history
        #expect(host.runOnce())
        #expect(host.history == history)
    }

    @Test func seed003ClaimsTheP100sInBothDomains() throws {
        let host = try SimHost("seed-003-power9.json", policies: try SimHost.examplePolicy("seed-003"))
        #expect(host.runOnce())
        #expect(host.addresses { $0.driver == "vfio-pci" } == ["0002:01:00.0", "000a:01:00.0"])
        #expect(host.node(1)?.uid == 107 && host.node(3)?.gid == 36)
        #expect(host.device("0003:01:00.0")?.driver == "tg3")
    }

    @Test func dryRunWritesNothingAndSaysWhatItWould() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"), dryRun: true)
        let before = host.kernel.inspect { $0.devices.mapValues { "\($0.driver ?? "-") \($0.override ?? "-")" } }
        #expect(host.runOnce())
        #expect(host.history.isEmpty)
        #expect(host.kernel.inspect { $0.devices.mapValues { "\($0.driver ?? "-") \($0.override ?? "-")" } } == before)
        #expect(host.kernel.inspect { $0.drivers["vfio-pci"]!.registered } == false)
        #expect(
            host.log.containing("[mi300x] would bind to vfio-pci (now unbound): policy \"mi300x\" wants vfio-pci").count
                == 8)
        #expect(host.log.containing("[connectx-7] would bind to vfio-pci (now on mlx5_core)").count == 8)
    }

    /// A dry run that sees a device the agent moved go, and one that starts after devices
    /// left, leaves where they came from on record: it writes nothing, removals included.
    @Test func dryRunRemovesNoOriginRecord() throws {
        let policy = try SimHost.examplePolicy("seed-000")
        let host = try SimHost("seed-000-mi300x.json", policies: policy)
        #expect(host.runOnce())
        let (gpu, nic) = (PCIAddress("0000:12:00.0")!, PCIAddress("0000:13:00.0")!)
        let records = { Set(host.originRecords) }
        #expect(records().isSuperset(of: ["\(gpu)", "\(nic)"]))
        let before = records()
        let dry = try host.restarted(policies: policy, dryRun: true)
        host.kernel.unplug(gpu)
        #expect(dry.runOnce(events: host.kernel))  // starts with the GPU gone
        host.kernel.unplug(nic)
        dry.handle(host.kernel.drain())  // sees the NIC go
        #expect(records() == before)
        #expect(host.log.containing("removed").count >= 1)
    }

    /// A dry run whose read the kernel holds past `--stuck-after` says so and writes no
    /// status record (a real agent's would then tell `status` of a device that is settled).
    @Test func dryRunWritesNoStatusRecord() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"), dryRun: true)
        #expect(host.runOnce())
        let gpu = PCIAddress("0000:12:00.0")!
        host.agent.ledger.noteStuck(gpu, after: .seconds(1))
        #expect(host.log.containing("\(gpu) stuck: a read or write has not returned").count == 1)
        #expect(!FileManager.default.fileExists(atPath: host.state + "/status"))
    }

    @Test func aModuleThatCannotLoadFailsClearlyAndOthersGoOn() throws {
        let policies = """
            [[policy]]
            name = "nic"
            match.ids = ["15b3:1021"]
            driver = "mlx5_vfio_pci"

            [[policy]]
            name = "gpu"
            match.ids = ["1002:74a1"]
            driver = "vfio-pci"
            """
        let host = try SimHost("seed-000-mi300x.json", policies: policies)
        #expect(!host.runOnce())
        #expect(host.addresses { $0.driver == "vfio-pci" }.count == 8)
        #expect(host.addresses { $0.driver == "mlx5_core" }.count == 8)
        let failure = try #require(host.log.containing("[nic] failed: load module mlx5_vfio_pci").first)
        #expect(failure.contains("Module mlx5_vfio_pci not found"))
    }
}
