import Glibc

/// An environment variable's value; nil when it is not set. Those that name a file, a
/// program or a socket are checked at start (`variableNotUTF8`).
package func getenvString(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}

/// The variables the agent reads that name a program to run or systemd's sockets.
package let namingVariables = ["HOTPLUG_AGENT_MODPROBE", "NOTIFY_SOCKET", "JOURNAL_STREAM"]

/// The first of `namingVariables` set to bytes that are not UTF-8: decoded, each bad byte
/// a U+FFFD, it would name another program or socket (`mp\xff` ran `mp\u{FFFD}` as root).
package func variableNotUTF8() -> String? {
    namingVariables.first { name in getenv(name).map { String(validatingCString: $0) == nil } ?? false }
}
