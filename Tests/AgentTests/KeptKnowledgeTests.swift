import Foundation
import Glibc
import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Policy
import Synchronization
import Testing

/// What the agent keeps between reconciles (identities, groups' members, the registered and
/// VFIO drivers) is forgotten by the events that change it, so a daemon that has run for a
/// while decides as a fresh one would.
struct KeptKnowledgeTests {
    let gpu = "0000:12:00.0"

    func change(_ address: String) -> (events: [UEvent], overflowed: Bool) {
        (
            [
                UEvent(
                    action: "change", subsystem: "pci", devpath: "/devices/\(address)",
                    properties: ["PCI_SLOT_NAME": address])
            ],
            false
        )
    }

    /// A device plugged into a group the agent has listed: its peers' next plans see it.
    @Test func aDeviceAddedToAListedGroupIsSeenByItsPeers() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        #expect(host.runOnce())
        _ = host.kernel.drain()
        let group = try #require(host.device(gpu)?.group)
        host.agent.handle(change(gpu))  // the group's members are known now
        try host.kernel.plug(
            HostDescription.Device(
                address: "0000:12:00.1", id: "8086:1593", subsystem: nil, class: "020000", parent: "0000:11:00.0",
                iommuGroup: group, driver: nil, bootVGA: nil, attributes: nil))
        #expect(host.device("0000:12:00.1")?.driver == "ice")
        host.deliverEvents()
        #expect(
            host.log.containing(
                "warning: \(gpu) [mi300x] IOMMU group \(group) is not viable for VFIO: held by 0000:12:00.1 (ice)"
            ).count == 1)
    }

    /// A VFIO driver whose name says nothing, loaded after the agent read the drivers: its
    /// `drivers` uevent makes the agent read them again, so a VM's device on it waits.
    @Test func aVFIODriverLoadedLaterIsKnownByItsDriversEvent() throws {
        var description = try SimHost.load("seed-000-mi300x.json")
        description.drivers.append(
            HostDescription.Driver(
                name: "acme_passthrough", module: "acme_passthrough", loaded: false,
                loadable: true, ids: nil, classes: nil, sriov: nil, vfio: true))
        let host = try SimHost(
            description, policies: "[[policy]]\nname = \"host\"\nmatch.ids = [\"1002:74a1\"]\ndriver = \"amdgpu\"\n")
        host.agent.handle(change("0000:03:00.0"))  // reads (and keeps) the drivers
        try host.kernel.write("/sys/bus/pci/devices/\(gpu)/driver_override", "acme_passthrough")
        try host.kernel.loadModule("acme_passthrough")
        #expect(host.device(gpu)?.driver == "acme_passthrough")
        let group = try #require(host.device(gpu)?.group)
        host.kernel.holdNode(group, pid: 4242, command: "qemu-system-x86")
        let events = host.kernel.drain()
        #expect(
            events.events.contains { $0.subsystem == "drivers" && $0.devpath == "/bus/pci/drivers/acme_passthrough" })
        let agent = host.agent
        #expect(
            HolderTests().returns(within: .seconds(10), unblock: { host.kernel.closeNode(group) }) {
                agent.handle(events)
            })
        #expect(host.device(gpu)?.driver == "acme_passthrough")
        #expect(host.log.containing("waiting: unbind acme_passthrough for amdgpu").count >= 1)
    }

    /// A module the agent loads itself is seen at once: the bind that follows needs no
    /// event to know the driver is there.
    @Test func aModuleTheAgentLoadsIsKnownWithoutItsEvent() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        host.agent.handle(change("0000:03:00.0"))  // vfio-pci is not registered yet
        host.agent.handle(change(gpu))
        #expect(host.device(gpu)?.driver == "vfio-pci")
        host.agent.handle(change("0000:22:00.0"))
        #expect(host.device("0000:22:00.0")?.driver == "vfio-pci")
        // Loaded once, for the first claim: the drivers read again know it is there.
        #expect(host.log.containing("load module vfio-pci").count == 1)
        #expect(host.agent.failureCount == 0)
    }

    /// Events naming groups that do not exist (only a root process can send them: libudev
    /// takes none from another user) leave nothing kept: an empty listing named no member
    /// whose `remove` would forget it, and each number kept one more entry, without bound.
    /// Found by this round's attacker (250,000 such events: 10.6 to 17.8 MiB).
    @Test func eventsForGroupsThatDoNotExistKeepNothing() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        #expect(host.runOnce())
        _ = host.kernel.drain()
        let before = host.reader.groups.count
        let events = (5000..<7000).map { group in
            UEvent(
                action: "add", subsystem: "vfio", devpath: "/devices/virtual/vfio/\(group)", devname: "vfio/\(group)")
        }
        host.agent.handle((events, false))
        #expect(host.reader.groups.count <= before)
        #expect(host.agent.failureCount == 0)
    }

    /// Events note devices for the CDI view only while one is kept to bring up to date (or
    /// being read): with none (no spec made yet; a dry run or a daemon without CDI makes
    /// none) the next look is a full one, and events for ever new addresses grew the set
    /// without bound (50,000 made-up addresses: 9.1 to 10.1 MiB, the last round's attacker).
    @Test func eventsNoteDevicesForTheCDIViewOnlyWhileOneIsKept() throws {
        let host = try SimHost("seed-000-mi300x.json", policies: try SimHost.examplePolicy("seed-000"))
        #expect(host.runOnce())
        _ = host.kernel.drain()
        let ghosts = (0..<2000).map { n in
            let address = "0000:\(String(0xe0 + n / 256, radix: 16)):\(String(format: "%02x", n / 8 % 32)).\(n % 8)"
            return UEvent(
                action: "add", subsystem: "pci", devpath: "/devices/\(address)", properties: ["PCI_SLOT_NAME": address])
        }
        host.agent.handle((ghosts, false))
        #expect(host.agent.cdiView.changedCount == 0)
        let specs = try #require(host.agent.cdiSpecs())
        host.agent.handle(change(gpu))
        #expect(host.agent.cdiView.changedCount == 1)
        #expect(host.agent.cdiSpecs() == specs)
        #expect(host.agent.failureCount == 0)
    }

    /// Forgetting by tag (the groups that list an address) forgets every value that carries
    /// the tag now, only those, and none whose tags it carried before it was read again.
    @Test func forgettingByTagForgetsExactlyTheValuesThatCarryIt() {
        let kept = KeptUntilForgotten<Int, [String], String> { $0 }
        var reads = 0
        func value(_ key: Int, _ tags: [String]) -> [String] {
            kept.value(for: key) {
                reads += 1; return tags
            }
        }
        _ = value(1, ["a"]); _ = value(2, ["a", "b"]); _ = value(3, ["c"])
        kept.forget(tagged: "a")
        reads = 0
        #expect(value(1, ["x"]) == ["x"] && value(2, ["a", "b"]) == ["a", "b"] && value(3, []) == ["c"])
        #expect(reads == 2)  // 1 and 2 read again, 3 kept
        kept.forget(tagged: "a")  // 1 carries "x" now: kept
        reads = 0
        #expect(value(1, []) == ["x"] && value(2, ["b"]) == ["b"] && reads == 1)
        kept.forget(tagged: "b")
        kept.forget(tagged: "b")  // nothing left that carries it
        reads = 0
        #expect(value(2, []) == [] && value(1, []) == ["x"] && value(3, []) == ["c"] && reads == 1)
        // A reading begun before a forget is returned, not kept.
        let late = kept.value(for: 4) {
            kept.forget(tagged: "unrelated")
            return ["d"]
        }
        reads = 0
        #expect(late == ["d"] && value(4, ["e"]) == ["e"] && reads == 1)
    }
}
