import FoundationEssentials
import HostInterface

extension SimulatedKernel {
    /// The host description in `file` (JSON, as `record` prints it) and a kernel built from it.
    package static func load(_ file: String) throws -> (HostDescription, SimulatedKernel) {
        let description = try JSONDecoder().decode(
            HostDescription.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
        return (description, try SimulatedKernel(description))
    }
}
