/// A PF's SR-IOV attributes.
public struct SRIOVState: Sendable, Equatable {
    public var totalVFs: Int
    public var numVFs: Int
    public var autoprobe: Bool

    public init(totalVFs: Int, numVFs: Int, autoprobe: Bool) {
        self.totalVFs = totalVFs
        self.numVFs = numVFs
        self.autoprobe = autoprobe
    }
}
