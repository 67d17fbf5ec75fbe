/// A device's own VFIO node: its name below `/dev/vfio/devices` and what lstat shows.
/// The name is found only through the device (`<device>/vfio-dev/`): N is the lowest free
/// number, so it changes across unbind, rebind and boots.
public struct DeviceNode: Sendable, Equatable {
    public var name: String
    public var state: NodeState

    public init(name: String, state: NodeState) {
        self.name = name
        self.state = state
    }
}
