import Policy
import Testing

/// `HostView.after`: what a device's verified steps leave, the view its reconcile confirms
/// against instead of reading the device again.
struct StepOutcomeTests {
    let policies = Fixture.policies(
        """
        [[policy]]
        name = "gpu"
        match.ids = ["1002:73bf"]
        driver = "vfio-pci"
        owner = "cloud"
        group = "kvm"
        mode = "0660"
        """)

    /// A claim's steps planned, then the view they leave planned again: nothing is left,
    /// and the device is as a look after them would read it but for what the kernel makes.
    @Test func aClaimsStepsLeaveADeviceWithNothingMoreToDo() throws {
        var gpu = Fixture.device("0000:0c:00.0", "1002:73bf", driver: "amdgpu", group: 20)
        gpu.inUse = []
        let view = Fixture.view([gpu, Fixture.device("0000:0c:00.1", "1002:ab28", class: 0x040300, group: 20)])
        let planner = Planner(policies: policies)
        let plan = planner.plan(for: gpu, in: view)
        #expect(plan.hasWork)
        let after = try #require(view.after(plan.steps, on: gpu.address))
        let device = try #require(after.devices[gpu.address])
        #expect(device.driver == "vfio-pci" && device.driverOverride == "vfio-pci")
        #expect(device.inUse == nil && device.vfioDeviceNames.isEmpty && device.deviceNode == nil)
        #expect(after.vfioNodes[20] == NodeState(uid: 1000, gid: 993, mode: 0o660))
        #expect(after.devices[Fixture.address("0000:0c:00.1")] == view.devices[Fixture.address("0000:0c:00.1")])
        #expect(!planner.plan(for: device, in: after).hasWork)
    }

    /// A device put in place keeps each group's members as a view built afresh lists them:
    /// in address order, gone from a group it left, and a group with none left gone.
    @Test func replacingADeviceKeepsItsGroupsAsAFreshViewWould() {
        let devices = [
            Fixture.device("0000:0c:00.1", "1002:ab28", group: 20),
            Fixture.device("0000:0d:00.0", "1002:73bf", group: 21)
        ]
        let moved = Fixture.device("0000:0d:00.0", "1002:73bf", driver: "vfio-pci", group: 20)
        let added = Fixture.device("0000:0b:00.0", "1002:73bf", group: 20)
        let view = Fixture.view(devices).replacing(moved).replacing(added)
        let fresh = Fixture.view([devices[0], moved, added])
        #expect(view.groupNumbers == fresh.groupNumbers && view.groupNumbers == [20])
        #expect(view.members(of: 20) == fresh.members(of: 20))
        #expect(view.members(of: 20).map(\.address.description) == ["0000:0b:00.0", "0000:0c:00.1", "0000:0d:00.0"])
        #expect(view.devices == fresh.devices)
    }

    /// Without those steps the same view still has work: the test above would pass for a
    /// view that had not changed only if the planner had nothing to do anyway.
    @Test func theViewBeforeTheStepsStillHasWork() {
        let gpu = Fixture.device("0000:0c:00.0", "1002:73bf", driver: "vfio-pci", group: 20)
        let view = Fixture.view([gpu], nodes: [20: NodeState(uid: 0, gid: 0, mode: 0o600)])
        #expect(Planner(policies: policies).plan(for: gpu, in: view).hasWork)
        let after = view.after(
            [Step(.setNodeAccess(group: 20, owner: nil, nodeGroup: nil, mode: 0o640), reason: "")], on: gpu.address)
        #expect(after?.vfioNodes[20] == NodeState(uid: 0, gid: 0, mode: 0o640))
    }

    /// A step whose outcome the step does not say leaves the device to be read again.
    @Test(arguments: [
        Action.loadModule("vfio-pci"), .writeConfig(offset: 0x80, width: 2, value: 0x40, mask: 0x40, expression: ""),
        .writeAttribute(path: "reset_method", value: ""), .setVFCount(4), .setAutoprobe(false),
        .restore(DriverOrigin(driver: "amdgpu", override: nil, movedTo: "vfio-pci"))
    ])
    func aStepWithAnOutcomeOfItsOwnMeansAFreshLook(action: Action) {
        let gpu = Fixture.device("0000:0c:00.0", "1002:73bf", driver: "amdgpu", group: 20)
        let view = Fixture.view([gpu])
        #expect(
            view.after(
                [Step(.bind(driver: "vfio-pci", from: "amdgpu"), reason: ""), Step(action, reason: "")],
                on: gpu.address) == nil)
    }

    /// `/dev/iommu` entries granted are there after; without a reading of it there is no
    /// outcome to say.
    @Test func grantsAddToWhatOpensDevIOMMU() throws {
        let gpu = Fixture.device("0000:0c:00.0", "1002:73bf", driver: "vfio-pci", group: 20)
        let grant = Step(.grantIOMMU(users: [Account(id: 1000, name: "cloud")], groups: []), reason: "")
        var view = Fixture.view([gpu])
        #expect(view.after([grant], on: gpu.address) == nil)
        view.iommu = IOMMUAccess(users: [0], groups: [])
        let after = try #require(view.after([grant], on: gpu.address))
        #expect(after.iommu == IOMMUAccess(users: [0, 1000], groups: []))
    }
}
