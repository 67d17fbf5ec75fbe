/* Holds a VFIO device the way a VMM does, in one of the ways the kernel counts as holding
 * it: while it runs, the kernel's unbind of the device blocks (vfio_unregister_group_dev
 * waits for the holder), which is what the agent must never walk into.
 *   group   container, group, IOMMU, device descriptor, all kept open (a VMM's usual way)
 *   device  the device descriptor only: the group node and container are closed
 *   mmap    BAR 0 mapped, then every descriptor closed: the mapping alone holds it
 *   thread  everything opened by a thread with a descriptor table of its own
 *           (unshare(CLONE_FILES)): /proc/PID/fd shows none of it
 * Prints "held" once it holds. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *group_name, *address;
static int container = -1, group = -1;

static int take_device(void) {
    char path[64];
    snprintf(path, sizeof path, "/dev/vfio/%s", group_name);
    container = open("/dev/vfio/vfio", O_RDWR);
    group = open(path, O_RDWR);
    if (container < 0 || group < 0) { perror("open"); return -1; }
    if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0) { perror("VFIO_GROUP_SET_CONTAINER"); return -1; }
    if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) { perror("VFIO_SET_IOMMU"); return -1; }
    int device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, address);
    if (device < 0) perror("VFIO_GROUP_GET_DEVICE_FD");
    return device;
}

static void held(void) {
    printf("held\n");
    fflush(stdout);
}

static void *thread_main(void *ready) {
    if (unshare(CLONE_FILES) < 0) { perror("unshare"); return NULL; }
    if (take_device() >= 0) held();
    for (;;) pause();
    return ready;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) { fprintf(stderr, "usage: vfio-holder GROUP ADDRESS [group|device|mmap|thread]\n"); return 2; }
    group_name = argv[1];
    address = argv[2];
    const char *mode = argc == 4 ? argv[3] : "group";
    if (strcmp(mode, "thread") == 0) {
        pthread_t thread;
        pthread_create(&thread, NULL, thread_main, NULL);
        for (;;) pause();
    }
    int device = take_device();
    if (device < 0) return 1;
    if (strcmp(mode, "device") == 0) {
        close(group);
        close(container);
    } else if (strcmp(mode, "mmap") == 0) {
        struct vfio_region_info info = { .argsz = sizeof info, .index = VFIO_PCI_BAR0_REGION_INDEX };
        if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &info) < 0) { perror("VFIO_DEVICE_GET_REGION_INFO"); return 1; }
        if (!(info.flags & VFIO_REGION_INFO_FLAG_MMAP)) { fprintf(stderr, "BAR 0 cannot be mapped\n"); return 1; }
        void *bar = mmap(NULL, info.size, PROT_READ, MAP_SHARED, device, (off_t)info.offset);
        if (bar == MAP_FAILED) { perror("mmap"); return 1; }
        close(device);
        close(group);
        close(container);
    } else if (strcmp(mode, "group") != 0) {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    held();
    for (;;) pause();
}
