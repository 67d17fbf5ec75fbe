import HostInterface
import Policy

/// SR-IOV as the kernel does it (drivers/pci/iov.c): `sriov_numvfs` and its errnos, VF
/// addresses from the PF's routing ID, and the order of links, uevents and probes.
extension SimulatedState {
    /// VF `index` (from 0) lives at PF routing ID + offset + index × stride, carrying into the bus.
    func vfAddress(of pf: PCIAddress, _ index: Int, _ sriov: SRIOV) -> PCIAddress {
        PCIAddress(domain: pf.domain, routingID: pf.routingID + sriov.offset + index * sriov.stride)
    }

    mutating func setNumVFs(_ pf: PCIAddress, _ text: String) throws(Errno) {
        guard let count = Int(firstLine(text).trimmingSpaces), count >= 0 else { throw .EINVAL }
        guard let device = devices[pf], var sriov = device.sriov else { throw .ENOENT }
        if count > sriov.total { throw .ERANGE }
        if count == sriov.count { return }
        // ENOENT with the device still there: its driver cannot configure SR-IOV (pci-stub,
        // vfio-pci without enable_sriov, or no driver at all).
        guard let driver = device.driver, drivers[driver]?.sriov == true else { throw .ENOENT }
        if sriov.count != 0 && count != 0 { throw .EBUSY }
        if count == 0 {
            disableVFs(pf)
        } else {
            sriov.count = count
            devices[pf]!.sriov = sriov
            // Each VF its own group, numbered as the kernel numbers a new one: the lowest free
            // (`ida_alloc` in `iommu_group_alloc`), so VFs made again reuse the numbers of
            // those destroyed. Found in one pass for all of them.
            var free = Array<Int>(), candidate = 0
            while free.count < count {
                if groupMembers[candidate] == nil { free.append(candidate) }
                candidate += 1
            }
            for index in 0..<count { addVF(pf, index, sriov, group: free[index]) }
            for (path, value) in sriov.perVFAttributes {
                for number in 1...count { devices[pf]!.attributes[path.replacing("%d", with: String(number))] = value }
            }
            events.append(pciEvent("change", pf))
        }
    }

    /// `add` first, with no physfn link; then the links and a `change`; then the probe.
    private mutating func addVF(_ pf: PCIAddress, _ index: Int, _ sriov: SRIOV, group: Int) {
        let parent = devices[pf]!
        let address = vfAddress(of: pf, index, sriov)
        var config = parent.config
        for i in 0..<4 { config[i] = 0xff }
        var vf = Device(
            address: address, id: PCIID(vendor: parent.id.vendor, device: sriov.vfDevice),
            subsystemID: parent.subsystemID, classCode: parent.classCode, parent: parent.parent, group: group,
            driver: nil, override: nil, bootVGA: false, attributes: [:], config: config)
        vf.physfn = pf
        // A PF on vfio-pci gives its VFs vfio-pci as their override itself.
        if isVFIO(parent.driver) { vf.override = parent.driver }
        insert(vf)
        events.append(pciEvent("add", address))
        if !holdVFLinks { linkVF(address) }
    }

    /// The physfn/virtfn links, the `change` that announces them, then the probe.
    mutating func linkVF(_ address: PCIAddress) {
        devices[address]!.linked = true
        events.append(pciEvent("change", address))
        attach(address)
    }

    mutating func releaseVFLinks() {
        holdVFLinks = false
        for address in devices.keys.sorted() where devices[address]!.physfn != nil && !devices[address]!.linked {
            linkVF(address)
        }
    }

    /// VF 0 first: each loses its links, then `unbind` and `remove`.
    private mutating func disableVFs(_ pf: PCIAddress) {
        guard let sriov = devices[pf]?.sriov else { return }
        for index in 0..<sriov.count {
            let address = vfAddress(of: pf, index, sriov)
            guard devices[address] != nil else { continue }
            devices[address]!.linked = false
            if devices[address]!.driver != nil { unbind(address) }
            events.append(pciEvent("remove", address))
            remove(address)
        }
        for path in sriov.perVFAttributes.keys {
            for number in 1...max(1, sriov.count) {
                devices[pf]!.attributes[path.replacing("%d", with: String(number))] = nil
            }
        }
        devices[pf]!.sriov!.count = 0
        events.append(pciEvent("change", pf))
    }

    /// The VFs of a PF, in order.
    func vfs(of pf: PCIAddress) -> [PCIAddress] {
        guard let sriov = devices[pf]?.sriov else { return [] }
        return (0..<sriov.count).map { vfAddress(of: pf, $0, sriov) }.filter { devices[$0] != nil }
    }
}

extension String {
    var trimmingSpaces: String {
        var text = Substring(self)
        while text.first == " " || text.first == "\t" { text.removeFirst() }
        while text.last == " " || text.last == "\t" { text.removeLast() }
        return String(text)
    }
}
