import AgentCommands

/// `hotplug-agent`: the daemon and the commands admins run. `simulate`, `bench` and
/// `--host FILE` are handed to hotplug-agent-lab (see `Laboratory`).
@main
enum AgentMain {
    static func main() {
        HotplugAgentCommand<LabElsewhere>.start()
    }
}
