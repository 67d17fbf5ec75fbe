import HostInterface
@testable import HotplugAgent
@testable import Simulation
import Policy
import Testing

/// All devices of an IOMMU group share its node: with two policies asking different
/// owners, the first decides, the node is set once, and nothing flips it back.
struct GroupNodeTests {
    @Test func twoPoliciesAskingDifferentOwnersOfOneGroupSetItsNodeOnce() throws {
        // Seed 004 with one policy changed: the USB functions go to vfio-pci for root.
        let policies = try SimHost.examplePolicy("seed-004").replacingOccurrences(of: """
            match.ids = ["1002:73a6", "1002:73a4"]
            driver = "pci-stub"
            """, with: """
            match.ids = ["1002:73a6", "1002:73a4"]
            driver = "vfio-pci"
            owner = "root"
            mode = "0600"
            """)
        let host = try SimHost("seed-004-x570.json", policies: policies)
        #expect(host.runOnce())
        #expect(host.runOnce())
        let changes = host.log.containing("set /dev/vfio/20 ")
        // navi21-usb comes first in policy order: it decides, once.
        #expect(changes.count <= 1, "\(changes)")
        let node = try #require(host.node(20))
        #expect(node.uid == 0 && node.mode == 0o600)
        let conflict = host.log.containing("/dev/vfio/20 is shared by the group: policy \"navi21-usb\" comes first")
        #expect(!conflict.isEmpty)
        #expect(try host.planLines().filter { $0.contains("/dev/vfio/20 is shared") }.count == 1)
    }
}
