import HostInterface
import Glibc
import Policy

/// Metrics for Prometheus through the node exporter's textfile collector, the way
/// smartmontools and apt export theirs on Debian: a `.prom` file rewritten atomically
/// (the collector never sees half of one) after each change.
package struct MetricsFile: Sendable {
    package let path: String
    /// The `--root` a default path lies below, or `/`.
    package var root = "/"

    package init(path: String, root: String = "/") {
        self.path = path
        self.root = root
    }

    /// The default place when the node exporter's textfile directory exists.
    package static func defaultPath(_ paths: HostPaths) -> String? {
        let directory = paths.under("/var/lib/prometheus/node-exporter")
        var st = stat()
        guard stat(directory, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { return nil }
        return directory + "/hotplug_agent.prom"
    }

    package struct Reload: Sendable {
        package var time: Double
        package var succeeded: Bool
    }

    package static func text(devices: [DeviceStatus], actions: [String: ActionCount], reload: Reload?) -> String {
        var lines = [
            "# HELP hotplug_agent_devices Devices a policy matches, by policy and where they stand.",
            "# TYPE hotplug_agent_devices gauge"
        ]
        var counts: [String: Int] = [:]
        for device in devices {
            counts["policy=\"\(label(device.policy))\",state=\"\(device.state)\"", default: 0] += 1
        }
        lines += counts.keys.sorted().map { "hotplug_agent_devices{\($0)} \(counts[$0]!)" }
        lines += [
            "# HELP hotplug_agent_actions_total Actions taken since the daemon started, by kind.",
            "# TYPE hotplug_agent_actions_total counter"
        ]
        lines += actions.keys.sorted().map { "hotplug_agent_actions_total{action=\"\($0)\"} \(actions[$0]!.done)" }
        lines += [
            "# HELP hotplug_agent_action_failures_total Actions that failed since the daemon started, by kind.",
            "# TYPE hotplug_agent_action_failures_total counter"
        ]
        lines += actions.keys.sorted().map {
            "hotplug_agent_action_failures_total{action=\"\($0)\"} \(actions[$0]!.failed)"
        }
        if let reload {
            lines += [
                "# HELP hotplug_agent_last_reload_timestamp_seconds When the policies were last reloaded.",
                "# TYPE hotplug_agent_last_reload_timestamp_seconds gauge",
                "hotplug_agent_last_reload_timestamp_seconds \(reload.time)",
                "# HELP hotplug_agent_last_reload_success Whether the last reload put new policies in force.",
                "# TYPE hotplug_agent_last_reload_success gauge",
                "hotplug_agent_last_reload_success \(reload.succeeded ? 1 : 0)"
            ]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes the file; the failure, if any (a link planted on the way refused, a full disk).
    package func write(_ text: String) -> IOFailure? {
        do {
            try writeFileAtomically(path, text, fileMode: 0o644, directoryMode: 0o755, durable: false, root: root)
            return nil
        } catch {
            return error
        }
    }

    /// Label values escape backslash, quote and newline (policy names cannot hold them).
    private static func label(_ value: String) -> String {
        value.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"").replacing("\n", with: "\\n")
    }
}

/// Seconds since the epoch, for timestamps in metrics.
package func unixTime() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
