import Policy
import Testing

struct PlannerTests {
    let vfio = """
        [[policy]]
        name = "gpu"
        match.ids = ["1002:73bf"]
        driver = "vfio-pci"
        owner = "cloud"
        group = "kvm"
        mode = "0660"
        """

    func plan(
        _ toml: String, _ address: String, _ devices: [PCIDevice], drivers: Set<String> = ["vfio-pci", "pci-stub"],
        nodes: [Int: NodeState] = [:]
    ) -> DevicePlan {
        let view = Fixture.view(devices, drivers: drivers, nodes: nodes)
        return Planner(policies: Fixture.policies(toml)).plan(for: view.devices[Fixture.address(address)]!, in: view)
    }

    @Test func bindsFromTheNativeDriverAndOwnsTheNodeAfterwards() {
        let gpu = Fixture.device("0000:0c:00.0", "1002:73bf", driver: "amdgpu", group: 20)
        let result = plan(vfio, "0000:0c:00.0", [gpu])
        #expect(result.policy == "gpu")
        #expect(
            result.steps.map(\.action) == [
                .bind(driver: "vfio-pci", from: "amdgpu"),
                .setNodeAccess(
                    group: 20, owner: Account(id: 1000, name: "cloud"), nodeGroup: Account(id: 993, name: "kvm"),
                    mode: 0o660)
            ])
        #expect(result.lines[0] == "bind to vfio-pci (now on amdgpu): policy \"gpu\" wants vfio-pci")
    }

    /// An attribute is written unless it holds the value's bytes: `é` as one scalar and as
    /// `e` with a combining mark are equal strings, different values to the kernel; a
    /// `\r` before the newline the kernel ends it with is a difference too.
    @Test func anAttributeIsComparedWithTheValueByItsBytes() {
        let policy = "[[policy]]\nname = \"nic\"\nmatch.ids = [\"8086:1593\"]\nsysfs = [\"ifalias=caf\u{e9}\"]\n"
        for (shown, differs) in [
            ("caf\u{e9}\n", false), ("caf\u{e9}", false), ("cafe\u{301}\n", true), ("caf\u{e9}\r\n", true)
        ] {
            var nic = Fixture.device("0000:03:00.0", "8086:1593", class: 0x020000, driver: "ice", group: 3)
            nic.attributes["ifalias"] = [AttributeReading(path: "ifalias", state: .value(shown))]
            let steps = plan(policy, "0000:03:00.0", [nic]).steps.map(\.action)
            #expect(steps.contains(.writeAttribute(path: "ifalias", value: "caf\u{e9}")) == differs, "\(shown)")
        }
    }

    @Test func loadsTheModuleWhenTheDriverIsNotRegistered() {
        let gpu = Fixture.device("0000:0c:00.0", "1002:73bf", group: 20)
        let result = plan(vfio, "0000:0c:00.0", [gpu], drivers: [])
        #expect(result.steps.first?.action == .loadModule("vfio-pci"))
    }

    @Test func aDeviceOnItsDriverWithTheRightNodeIsLeftAlone() {
        let gpu = Fixture.device("0000:0c:00.0", "1002:73bf", driver: "vfio-pci", group: 20)
        let owned = NodeState(uid: 1000, gid: 993, mode: 0o660)
        #expect(!plan(vfio, "0000:0c:00.0", [gpu], nodes: [20: owned]).hasWork)
        let fresh = NodeState(uid: 0, gid: 0, mode: 0o600)
        let again = plan(vfio, "0000:0c:00.0", [gpu], nodes: [20: fresh])
        #expect(again.steps.map(\.reason) == ["it is 0:0 0600 now"])
    }

    @Test func bridgesAreNeverUnboundOrClaimed() {
        let bridge = Fixture.device("0000:0b:00.0", "1002:1479", class: 0x060400, driver: "pcieport", group: 19)
        let result = plan(
            "[[policy]]\nname = \"all\"\nmatch.ids = [\"1002:*\"]\ndriver = \"vfio-pci\"", "0000:0b:00.0", [bridge])
        #expect(!result.hasWork)
        #expect(result.refusals == [Refusal("unbind pcieport", reason: "bridges are never unbound or claimed")])
    }

    @Test func theBootVGADeviceIsRefusedUnlessAllowed() {
        let vga = Fixture.device("0000:09:00.0", "1002:73bf", driver: "amdgpu", group: 17, bootVGA: true)
        let refused = plan(vfio, "0000:09:00.0", [vga])
        #expect(!refused.hasWork)
        #expect(
            refused.refusals.map(\.description) == [
                "refused: unbind amdgpu: 0000:09:00.0 is the boot VGA device (allow-boot-vga = true allows it)"
            ])
        let allowed = plan(vfio + "\nallow-boot-vga = true", "0000:09:00.0", [vga])
        #expect(allowed.steps.first?.action == .bind(driver: "vfio-pci", from: "amdgpu"))
    }

    @Test func withoutAnIOMMUGroupVFIOIsRefused() {
        let gpu = Fixture.device("0000:0c:00.0", "1002:73bf", driver: "amdgpu", group: nil)
        #expect(
            plan(vfio, "0000:0c:00.0", [gpu]).refusals.map(\.reason) == [
                "the device has no IOMMU group (is the IOMMU enabled?)"
            ])
    }

    /// The seed-004 group: GPU, HDMI audio, USB-C and UCSI in one IOMMU group.
    var navi21: [PCIDevice] {
        [
            Fixture.device("0000:0c:00.0", "1002:73bf", driver: "amdgpu", group: 20),
            Fixture.device("0000:0c:00.1", "1002:ab28", class: 0x040300, driver: "snd_hda_intel", group: 20),
            Fixture.device("0000:0c:00.2", "1002:73a6", class: 0x0c0330, driver: "xhci_hcd", group: 20),
            Fixture.device("0000:0c:00.3", "1002:73a4", class: 0x0c8000, driver: "i2c-designware-pci", group: 20)
        ]
    }

    @Test func claimGroupTakesTheUnmatchedEndpoints() {
        let toml = """
            [[policy]]
            name = "usb"
            match.ids = ["1002:73a6", "1002:73a4"]
            driver = "pci-stub"
            """ + "\n" + vfio + "\nclaim-group = true"
        let audio = plan(toml, "0000:0c:00.1", navi21)
        #expect(audio.policy == "gpu" && audio.via == Fixture.address("0000:0c:00.0"))
        #expect(audio.steps.map(\.action) == [.bind(driver: "vfio-pci", from: "snd_hda_intel")])
        #expect(plan(toml, "0000:0c:00.2", navi21).steps.map(\.action) == [.bind(driver: "pci-stub", from: "xhci_hcd")])
        #expect(plan(toml, "0000:0c:00.0", navi21).warnings == [])
    }

    @Test func withoutClaimGroupANonViableGroupIsReportedWithItsHolders() {
        let gpu = plan(vfio, "0000:0c:00.0", navi21)
        #expect(
            gpu.warnings == [
                "IOMMU group 20 is not viable for VFIO: held by 0000:0c:00.1 (snd_hda_intel), "
                    + "0000:0c:00.2 (xhci_hcd), 0000:0c:00.3 (i2c-designware-pci); claim-group = true would bind them "
                    + "too"
            ])
        #expect(plan(vfio, "0000:0c:00.1", navi21).policy == nil)
    }

    @Test func aRefusedLeaderClaimsNoFollowers() {
        var devices = navi21
        devices[0].bootVGA = true
        #expect(plan(vfio + "\nclaim-group = true", "0000:0c:00.1", devices).policy == nil)
    }

    @Test func driverNoneKeepsTheDeviceUnbound() {
        let gpu = Fixture.device("0000:0c:00.0", "1002:73bf", driver: "amdgpu", group: 20)
        let toml = "[[policy]]\nname = \"off\"\nmatch.ids = [\"1002:73bf\"]\ndriver = \"none\""
        #expect(plan(toml, "0000:0c:00.0", [gpu]).steps.map(\.action) == [.unbind(from: "amdgpu")])
        var unbound = gpu
        unbound.driver = nil
        #expect(!plan(toml, "0000:0c:00.0", [unbound]).hasWork)
    }

    @Test func aNodeThatIsNotACharacterDeviceIsRefused() {
        let gpu = Fixture.device("0000:0c:00.0", "1002:73bf", driver: "vfio-pci", group: 20)
        let planted = NodeState(uid: 0, gid: 0, mode: 0o777, isCharacterDevice: false)
        #expect(
            plan(vfio, "0000:0c:00.0", [gpu], nodes: [20: planted]).refusals.map(\.reason) == [
                "/dev/vfio/20 is not a character device"
            ])
    }
}

/// The contract's safety rules that the planner alone decides.
struct PlannerSafetyTests {
    @Test func anUnboundBootVGADeviceIsNotClaimedEither() {
        // efifb or simpledrm may still scan out of it, though no PCI driver is bound.
        let vga = Fixture.device("0000:09:00.0", "1002:73bf", group: 17, bootVGA: true)
        let policies = Fixture.policies(
            "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:73bf\"]\ndriver = \"vfio-pci\"")
        let view = Fixture.view([vga])
        let refused = Planner(policies: policies).plan(for: vga, in: view)
        #expect(!refused.hasWork)
        #expect(
            refused.lines == [
                "refused: bind to vfio-pci: 0000:09:00.0 is the boot VGA device (allow-boot-vga = true allows it)"
            ])
        let allowed = Fixture.policies(
            "[[policy]]\nname = \"gpu\"\nmatch.ids = [\"1002:73bf\"]\ndriver = \"vfio-pci\"\nallow-boot-vga = true")
        #expect(
            Planner(policies: allowed).plan(for: vga, in: view).steps.map(\.action) == [
                .bind(driver: "vfio-pci", from: nil)
            ])
    }

    @Test func oneGroupHasOneOwnerTheFirstPolicyDecidesAndTheConflictIsReportedOnce() {
        let policies = Fixture.policies(
            """
            [[policy]]
            name = "first"
            match.ids = ["1002:73bf"]
            driver = "vfio-pci"
            owner = "cloud"
            mode = "0660"
            [[policy]]
            name = "second"
            match.ids = ["1002:ab28", "1002:73a6"]
            driver = "vfio-pci"
            owner = "qemu"
            mode = "0600"
            """)
        let devices = [
            Fixture.device("0000:0c:00.0", "1002:73bf", driver: "vfio-pci", group: 20),
            Fixture.device("0000:0c:00.1", "1002:ab28", class: 0x040300, driver: "vfio-pci", group: 20),
            Fixture.device("0000:0c:00.2", "1002:73a6", class: 0x0c0330, driver: "vfio-pci", group: 20)
        ]
        let planner = Planner(policies: policies)
        func plans(_ node: NodeState) -> [DevicePlan] {
            planner.planAll(in: Fixture.view(devices, nodes: [20: node]))
        }
        let fresh = plans(NodeState(uid: 0, gid: 0, mode: 0o600))
        let nodeSteps = fresh.flatMap(\.steps).map(\.action)
        #expect(
            nodeSteps == [
                .setNodeAccess(group: 20, owner: Account(id: 1000, name: "cloud"), nodeGroup: nil, mode: 0o660)
            ])
        let conflicts = fresh.flatMap(\.warnings).filter { $0.contains("/dev/vfio/20 is shared") }
        #expect(
            conflicts == [
                "/dev/vfio/20 is shared by the group: policy \"first\" comes first and decides its owner, group and "
                    + "mode; policy \"second\" asks otherwise and is not applied to it"
            ])
        #expect(fresh[1].warnings == conflicts)
        // Once the first policy's owner is on the node, nothing flips it back.
        #expect(!plans(NodeState(uid: 1000, gid: 0, mode: 0o660)).contains { $0.hasWork })
    }
}
