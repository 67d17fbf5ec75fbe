import HostInterface
import CLinux
import Glibc

/// The processes devices wait for (a VMM holding a device a policy would return), watched
/// through a `pidfd` each: closing a VFIO node sends no uevent, but a process's exit makes
/// its pidfd readable, so the daemon looks again at once instead of at its next timed look.
/// A process that is gone before it is watched counts as exited; where pidfds are refused
/// (kernels before 5.3, a seccomp filter) the timed look is all there is. At most `limit`
/// processes are watched: a VM user who forks a thousand holders of its node must not use
/// up the agent's descriptors (the rest are noticed by the timed look).
package final class HolderWatch {
    package static let limit = 64

    private var watched: [Int32: Int32] = [:]  // pid -> pidfd
    /// Those found gone already, said once each.
    private var gone: Set<Int32> = []

    deinit { for fd in watched.values { close(fd) } }

    /// Why the last pidfd could not be had (other than the process being gone), once.
    private(set) var refused: Errno?

    /// Watches exactly `pids`. Returns whether one of them is gone already.
    package func watch(_ pids: Set<Int32>) -> Bool {
        var exited = false
        for (pid, fd) in watched where !pids.contains(pid) {
            close(fd)
            watched[pid] = nil
        }
        gone.formIntersection(pids)
        for pid in pids.sorted() where watched[pid] == nil && !gone.contains(pid) && watched.count < Self.limit {
            let fd = hotplug_agent_pidfd_open(pid)
            if fd >= 0 {
                watched[pid] = fd
            } else if errno == ESRCH {
                gone.insert(pid)
                exited = true
            } else {
                refused = .current
            }
        }
        return exited
    }

    /// The descriptors to poll, readable once their process exits.
    package var descriptors: [Int32] { watched.values.sorted() }

    /// Forgets the processes whose descriptors polled readable; returns whether any did.
    package func takeExited(_ polled: [pollfd]) -> Bool {
        let exited = Set(polled.filter { $0.revents != 0 }.map(\.fd))
        for (pid, fd) in watched where exited.contains(fd) {
            close(fd)
            watched[pid] = nil
        }
        return !exited.isEmpty
    }
}
