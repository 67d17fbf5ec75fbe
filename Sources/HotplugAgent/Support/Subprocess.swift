import HostInterface
import Glibc

/// Runs a program to completion with standard error and output captured: enough for modprobe.
package enum Subprocess {
    package struct Result {
        package var status: Int32
        package var output: String
        /// It ran past its time limit and was killed.
        package var timedOut = false
    }

    /// Removes a directory tree the agent made (its own temporary state).
    @discardableResult
    package static func removeTree(_ path: String) -> Bool {
        (try? run("/bin/rm", arguments: ["-rf", "--", path]).status) == 0
    }

    /// Runs `path` to completion. `input` goes to its standard input through a pipe, fed as
    /// the child reads it while its output is collected (no temporary file: the agent needs
    /// no writable `/tmp`); past `timeout` the child is killed and `timedOut` says so.
    package static func run(
        _ path: String, arguments: [String], input: [UInt8]? = nil, timeout: Duration? = nil
    ) throws(Errno) -> Result {
        var outputFDs: [Int32] = [0, 0]
        guard makePipe(&outputFDs) else { throw .current }
        var inputFDs: [Int32] = [-1, -1]
        if input != nil {
            guard makePipe(&inputFDs) else {
                outputFDs.forEach { close($0) }
                throw .current
            }
            _ = fcntl(inputFDs[1], F_SETFL, fcntl(inputFDs[1], F_GETFL) | O_NONBLOCK)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, outputFDs[1], 1)
        posix_spawn_file_actions_adddup2(&actions, outputFDs[1], 2)
        if input != nil {
            posix_spawn_file_actions_adddup2(&actions, inputFDs[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let spawned =
            path.contains("/")
            ? posix_spawn(&pid, path, &actions, nil, argv, environ)
            : posix_spawnp(&pid, path, &actions, nil, argv, environ)
        close(outputFDs[1])
        if inputFDs[0] >= 0 { close(inputFDs[0]) }
        var writeFD = inputFDs[1]
        defer { if writeFD >= 0 { close(writeFD) } }
        guard spawned == 0 else {
            close(outputFDs[0])
            throw Errno(spawned)
        }
        let pending = input ?? []
        var sent = 0
        if writeFD >= 0 && pending.isEmpty {
            close(writeFD)
            writeFD = -1
        }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = timeout.map { ContinuousClock.now + $0 }
        var timedOut = false
        var reading = true
        while reading {
            var fds = [pollfd(fd: outputFDs[0], events: Int16(POLLIN), revents: 0)]
            if writeFD >= 0 { fds.append(pollfd(fd: writeFD, events: Int16(POLLOUT), revents: 0)) }
            let wait = deadline.map { ($0 - ContinuousClock.now).pollMilliseconds } ?? -1
            let ready = poll(&fds, nfds_t(fds.count), wait)
            if ready < 0 && Errno.current == .EINTR { continue }
            if ready == 0 {
                kill(pid, SIGKILL)
                timedOut = true
                break
            }
            if fds.count > 1 && fds[1].revents != 0 {
                let written = pending.withUnsafeBytes { Glibc.write(writeFD, $0.baseAddress! + sent, $0.count - sent) }
                if written > 0 { sent += written }
                // Done, or the child stopped reading (EPIPE): it gets end of file either way.
                if sent == pending.count || (written < 0 && Errno.current != .EAGAIN && Errno.current != .EINTR) {
                    close(writeFD)
                    writeFD = -1
                }
            }
            guard fds[0].revents != 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { Glibc.read(outputFDs[0], $0.baseAddress, $0.count) }
            if count < 0 && Errno.current == .EINTR { continue }
            if count <= 0 { reading = false; continue }
            if output.count < 65536 { output += buffer[..<count] }
        }
        close(outputFDs[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && Errno.current == .EINTR {}
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code, output: String(decoding: output, as: UTF8.self), timedOut: timedOut)
    }

    /// A pipe whose ends close on exec (pipe2 needs _GNU_SOURCE, hidden from Swift).
    private static func makePipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return true
    }
}
