/// What a device had before the agent first changed it: its driver and override before a
/// move (and where it was moved to), and a PF's SR-IOV state before the agent set it.
public struct DriverOrigin: Sendable, Equatable {
    public var driver: String?
    public var override: String?
    /// Nil when the agent never moved the device's driver (it only changed SR-IOV).
    public var movedTo: String?
    public var sriov: SRIOVOrigin?
    /// The vendor:device of the device it was recorded for; nil in a record an older
    /// version wrote. A record is only believed for a device of that ID: another card in
    /// the slot did not come from that driver.
    public var device: PCIID?

    public init(
        driver: String?, override: String?, movedTo: String?, sriov: SRIOVOrigin? = nil, device: PCIID? = nil
    ) {
        self.driver = driver
        self.override = override
        self.movedTo = movedTo
        self.sriov = sriov
        self.device = device
    }
}

/// A PF's VF count and `sriov_drivers_autoprobe` before the agent first changed them.
public struct SRIOVOrigin: Sendable, Equatable {
    public var numVFs: Int
    public var autoprobe: Bool

    public init(numVFs: Int, autoprobe: Bool) {
        self.numVFs = numVFs
        self.autoprobe = autoprobe
    }
}
