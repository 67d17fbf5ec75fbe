import HotplugAgent

/// `hotplug-agent`: the daemon and the commands admins run. `simulate`, `bench` and
/// `--host FILE` are handed to hotplug-agent-lab (see `Lab`).
@main
enum AgentMain {
    static func main() {
        HotplugAgentCommand.start()
    }
}
