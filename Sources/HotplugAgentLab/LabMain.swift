import AgentCommands
import ArgumentParser
import HostInterface
import HotplugAgent
import Simulation

/// `hotplug-agent-lab`: every command of hotplug-agent, with the simulated kernel and the
/// benchmarks behind `simulate`, `bench` and `--host FILE`.
@main
enum LabMain {
    static func main() {
        HotplugAgentCommand<SimulatedLab>.start()
    }
}

/// The lab's laboratory: the simulated kernel, in this process.
enum SimulatedLab: Laboratory {
    static func host(_ file: String) throws -> SimulatedHost {
        let (description, kernel) = try loadSimulatedHost(file)
        return SimulatedHost(description: description, io: kernel, paths: kernel.paths)
    }

    static func simulate(_ command: SimulateCommand<Self>) throws { try command.simulate() }
    static func bench(_ command: BenchCommand<Self>) throws { try command.figures() }
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
