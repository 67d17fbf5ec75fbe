import Glibc

/// Runs a program to completion with standard error and output captured: enough for modprobe.
enum Subprocess {
    struct Result {
        var status: Int32
        var output: String
    }

    /// Removes a directory tree the agent made (its own temporary state).
    @discardableResult
    static func removeTree(_ path: String) -> Bool {
        (try? run("/bin/rm", arguments: ["-rf", "--", path]).status) == 0
    }

    /// Runs `path` to completion. `input` goes to its standard input (through a file, so no
    /// pipe can fill up); past `timeout` the child is killed and reported as signal 9.
    static func run(_ path: String, arguments: [String], input: [UInt8]? = nil, timeout: Duration? = nil) throws(Errno) -> Result {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw .current }
        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)
        var inputFD: Int32 = -1
        if let input {
            var template = Array("/tmp/hotplug-agent-input.XXXXXX".utf8CString)
            inputFD = mkstemp(&template)
            guard inputFD >= 0 else { throw .current }
            unlink(String(cString: template))
            _ = input.withUnsafeBytes { Glibc.write(inputFD, $0.baseAddress, $0.count) }
            lseek(inputFD, 0, SEEK_SET)
            posix_spawn_file_actions_adddup2(&actions, inputFD, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        defer { if inputFD >= 0 { close(inputFD) } }

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let spawned = path.contains("/")
            ? posix_spawn(&pid, path, &actions, nil, argv, environ)
            : posix_spawnp(&pid, path, &actions, nil, argv, environ)
        close(pipeFDs[1])
        guard spawned == 0 else {
            close(pipeFDs[0])
            throw Errno(spawned)
        }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = timeout.map { ContinuousClock.now + $0 }
        while true {
            if let deadline {
                var ready = pollfd(fd: pipeFDs[0], events: Int16(POLLIN), revents: 0)
                if poll(&ready, 1, (deadline - ContinuousClock.now).pollMilliseconds) == 0 {
                    kill(pid, SIGKILL)
                    break
                }
            }
            let count = buffer.withUnsafeMutableBytes { Glibc.read(pipeFDs[0], $0.baseAddress, $0.count) }
            if count < 0 && Errno.current == .EINTR { continue }
            if count <= 0 { break }
            if output.count < 65536 { output += buffer[..<count] }
        }
        close(pipeFDs[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && Errno.current == .EINTR {}
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code, output: String(decoding: output, as: UTF8.self))
    }
}
