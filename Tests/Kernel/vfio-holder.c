/* Holds a VFIO device the way a VMM does: container, group, IOMMU, device fd. While it
 * runs, the kernel's unbind of the device blocks (vfio_unregister_group_dev waits for the
 * holder), which is what the agent must never walk into. Prints "held" once it holds. */
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: vfio-holder GROUP ADDRESS\n"); return 2; }
    char path[64];
    snprintf(path, sizeof path, "/dev/vfio/%s", argv[1]);
    int container = open("/dev/vfio/vfio", O_RDWR);
    int group = open(path, O_RDWR);
    if (container < 0 || group < 0) { perror("open"); return 1; }
    if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0) { perror("VFIO_GROUP_SET_CONTAINER"); return 1; }
    if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) { perror("VFIO_SET_IOMMU"); return 1; }
    int device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, argv[2]);
    if (device < 0) { perror("VFIO_GROUP_GET_DEVICE_FD"); return 1; }
    printf("held\n");
    fflush(stdout);
    for (;;) pause();
}
