#ifndef HOTPLUG_AGENT_CLINUX_SHIM_H
#define HOTPLUG_AGENT_CLINUX_SHIM_H
/* Linux system calls Swift cannot reach through glibc's module: openat2 has no glibc
 * wrapper (nor, in glibc 2.36, has pidfd_open) and syscall() is variadic (getdents64 too); the xattr calls, mallopt
 * and statfs (a file system's type) live in headers it leaves out. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <malloc.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <unistd.h>

/* openat2(dirfd, path, {flags, 0, resolve}); -1 with errno set (ENOSYS before Linux 5.6). */
static inline int hotplug_agent_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
#ifdef SYS_openat2
    struct open_how how = { .flags = flags, .mode = 0, .resolve = resolve };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/* pidfd_open(pid, 0): a descriptor that polls readable once the process exits; -1 with
 * errno set (ESRCH: it has exited already; ENOSYS before Linux 5.3). Close-on-exec. */
static inline int hotplug_agent_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/* getdents64(fd, buffer, size): directory entries as struct linux_dirent64 records, 0 at
 * the end; -1 with errno set. glibc's readdir needs fdopendir's fstat and fcntl first. */
static inline long hotplug_agent_getdents64(int fd, void *buffer, size_t size) {
    return syscall(SYS_getdents64, fd, buffer, size);
}

static const uint64_t HOTPLUG_AGENT_RESOLVE_BENEATH = RESOLVE_BENEATH;
static const uint64_t HOTPLUG_AGENT_RESOLVE_NO_SYMLINKS = RESOLVE_NO_SYMLINKS;
static const uint64_t HOTPLUG_AGENT_RESOLVE_NO_MAGICLINKS = RESOLVE_NO_MAGICLINKS;
static const uint64_t HOTPLUG_AGENT_RESOLVE_NO_XDEV = RESOLVE_NO_XDEV;
static const uint64_t HOTPLUG_AGENT_RESOLVE_IN_ROOT = RESOLVE_IN_ROOT;
#endif
