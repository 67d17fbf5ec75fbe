/// A port between a device and its root port, nearest first, with its config space.
public struct UpstreamPort: Sendable, Equatable {
    public var address: PCIAddress
    public var config: ConfigSpace

    public init(address: PCIAddress, config: ConfigSpace) {
        self.address = address
        self.config = config
    }
}
