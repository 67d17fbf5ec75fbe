import ArgumentParser
import HostInterface
import HotplugAgent
import Simulation

/// `hotplug-agent-lab`: every command of hotplug-agent, with the simulated kernel and the
/// benchmarks behind `simulate`, `bench` and `--host FILE`.
@main
enum LabMain {
    static func main() {
        Lab.loadHost = { file in
            let (description, kernel) = try loadSimulatedHost(file)
            return Lab.Host(description: description, io: kernel, paths: kernel.paths)
        }
        Lab.simulate = { try $0.simulate() }
        Lab.bench = { try $0.figures() }
        HotplugAgentCommand.start()
    }
}

/// A simulated host from a host description file; exits 1 with the reason when it cannot.
func loadSimulatedHost(_ file: String) throws -> (HostDescription, SimulatedKernel) {
    do {
        return try SimulatedKernel.load(file)
    } catch {
        LineLogHandler.error("hotplug-agent: \(file): \(error)")
        throw ExitCode(1)
    }
}
