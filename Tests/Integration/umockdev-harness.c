/*
 * Integration test: the built hotplug-agent under umockdev's preload library, so the real
 * libudev monitor and the real file layer receive real uevents and see a real sysfs tree.
 *
 * umockdev's test bed is a plain directory tree: nothing reacts to writes. This harness
 * plays the kernel's part for the files the agent writes (driver_override, a driver's
 * unbind, drivers_probe), as Linux does: probe honours the override, the first VFIO device
 * of a group creates /dev/vfio/<group> (root 0600, announced before the device's bind),
 * and every change is sent as a uevent. It writes nothing outside the test bed.
 *
 * Usage: umockdev-wrapper umockdev-harness AGENT POLICY_DIR (the sender of uevents reads
 * the test bed through libudev, so the harness runs under the preload library too). Prints one line per check and
 * "N passed, M failed"; exits 1 if any check failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#include <umockdev.h>

static UMockdevTestbed *bed;
static int vf_requested;             /* the agent wrote 1 to the PF's sriov_numvfs */
static char *root;
static int passed, failed;
static int watch_fd;

static char *at(const char *relative) {
    static char buffers[4][1024];
    static int next;
    char *buffer = buffers[next++ % 4];
    snprintf(buffer, sizeof buffers[0], "%s%s", root, relative);
    return buffer;
}

static void check(int ok, const char *what) {
    printf("%s: %s\n", ok ? "PASS" : "FAIL", what);
    fflush(stdout);
    if (ok) passed++; else failed++;
}

static void write_file(const char *relative, const char *text) {
    FILE *f = fopen(at(relative), "w");
    if (!f) { perror(relative); exit(2); }
    fputs(text, f);
    fclose(f);
}

static void read_file(const char *path, char *out, size_t size) {
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t n = fread(out, 1, size - 1, f);
    out[n] = 0;
    fclose(f);
    char *newline = strchr(out, '\n');
    if (newline) *newline = 0;
}

/* The driver a device is bound to, from its driver link; "" when unbound. */
static void driver_of(const char *address, char *out, size_t size) {
    char link[1024], target[1024];
    snprintf(link, sizeof link, "%s/sys/devices/%s/driver", root, address);
    ssize_t n = readlink(link, target, sizeof target - 1);
    out[0] = 0;
    if (n <= 0) return;
    target[n] = 0;
    snprintf(out, size, "%s", strrchr(target, '/') + 1);
}

static int group_of(const char *address) {
    char link[1024], target[1024];
    snprintf(link, sizeof link, "%s/sys/devices/%s/iommu_group", root, address);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) return -1;
    target[n] = 0;
    return atoi(strrchr(target, '/') + 1);
}

/* A PCI function with its IOMMU group, optionally bound to a driver. */
static void add_pci(const char *address, const char *vendor, const char *device, const char *class_code,
                    int group, const char *driver) {
    char vendor_hex[16], device_hex[16], class_hex[16], id[16], syspath[256], link[256];
    snprintf(vendor_hex, sizeof vendor_hex, "0x%s", vendor);
    snprintf(device_hex, sizeof device_hex, "0x%s", device);
    snprintf(class_hex, sizeof class_hex, "0x%s", class_code);
    snprintf(id, sizeof id, "%s:%s", vendor, device);
    char sub[16];
    snprintf(sub, sizeof sub, "%s:0001", vendor);  /* as subsystem_vendor/subsystem_device say */
    gchar *path = umockdev_testbed_add_device(bed, "pci", address, NULL,
        "vendor", vendor_hex, "device", device_hex, "class", class_hex,
        "subsystem_vendor", vendor_hex, "subsystem_device", "0x0001", "driver_override", "(null)\n",
        /* pci_enable_device count: vfio-pci raises it only while a user has the device open. */
        "enable", "0\n", NULL,
        "PCI_SLOT_NAME", address, "PCI_ID", id, "PCI_CLASS", class_code, "PCI_SUBSYS_ID", sub, NULL);
    snprintf(syspath, sizeof syspath, "%s", path);
    g_free(path);
    snprintf(link, sizeof link, "/sys/kernel/iommu_groups/%d/devices", group);
    g_mkdir_with_parents(at(link), 0755);
    snprintf(link, sizeof link, "../../kernel/iommu_groups/%d", group);
    umockdev_testbed_set_attribute_link(bed, syspath, "iommu_group", link);
    char member[256], target[256];
    snprintf(member, sizeof member, "/sys/kernel/iommu_groups/%d/devices/%s", group, address);
    snprintf(target, sizeof target, "../../../../devices/%s", address);
    if (symlink(target, at(member)) < 0) { perror("symlink"); exit(2); }
    if (driver) {
        snprintf(link, sizeof link, "../../bus/pci/drivers/%s", driver);
        umockdev_testbed_set_attribute_link(bed, syspath, "driver", link);
        umockdev_testbed_set_property(bed, syspath, "DRIVER", driver);
    }
}

/* A device as it exists the moment the kernel announces it: attributes, links (the
 * driver a native probe gave it, the IOMMU group) and, for a VF, config space reading all
 * ones where its IDs would be. Built in one step, which sends no uevent; the caller
 * sends them, so the agent never sees half a device. */
static void add_pci_whole(const char *address, const char *vendor, const char *device, const char *class_code,
                          int group, const char *driver, int reads_as_vf) {
    char text[2048], link[256], target[256];
    int n = snprintf(text, sizeof text,
        "P: /devices/%s\nE: SUBSYSTEM=pci\nE: PCI_SLOT_NAME=%s\nE: PCI_ID=%s:%s\nE: PCI_CLASS=%s\n"
        "E: PCI_SUBSYS_ID=%s:0001\n"
        "A: vendor=0x%s\nA: device=0x%s\nA: class=0x%s\nA: subsystem_vendor=0x%s\nA: subsystem_device=0x0001\n"
        "A: driver_override=(null)\\n\nA: enable=0\\n\nL: iommu_group=../../kernel/iommu_groups/%d\n",
        address, address, vendor, device, class_code, vendor, vendor, device, class_code, vendor, group);
    if (driver) n += snprintf(text + n, sizeof text - n, "L: driver=../../bus/pci/drivers/%s\nE: DRIVER=%s\n", driver, driver);
    if (reads_as_vf) n += snprintf(text + n, sizeof text - n, "H: config=ffffffff%0120d\n", 0);
    GError *error = NULL;
    if (!umockdev_testbed_add_from_string(bed, text, &error)) { fprintf(stderr, "add_from_string: %s\n", error->message); exit(2); }
    snprintf(link, sizeof link, "/sys/kernel/iommu_groups/%d/devices", group);
    g_mkdir_with_parents(at(link), 0755);
    snprintf(link, sizeof link, "/sys/kernel/iommu_groups/%d/devices/%s", group, address);
    snprintf(target, sizeof target, "../../../../devices/%s", address);
    if (symlink(target, at(link)) < 0) { perror("symlink"); exit(2); }
}

static void uevent_pci(const char *address, const char *action) {
    char syspath[256];
    snprintf(syspath, sizeof syspath, "/sys/devices/%s", address);
    umockdev_testbed_uevent(bed, syspath, action);
}

/* The first VFIO device of a group: /dev/vfio/<group>, a real character node in the bed. */
static void create_vfio_node(int group) {
    char node[64], name[16], syspath[64];
    snprintf(node, sizeof node, "/dev/vfio/%d", group);
    struct stat st;
    if (lstat(at(node), &st) == 0) return;
    snprintf(name, sizeof name, "%d", group);
    snprintf(syspath, sizeof syspath, "/sys/devices/%d", group);
    if (access(at(syspath), F_OK) != 0) {
        char devname[64];
        snprintf(devname, sizeof devname, "/dev/vfio/%d", group);
        g_free(umockdev_testbed_add_device(bed, "vfio", name, NULL, NULL, "DEVNAME", devname, NULL));
    }
    if (mknod(at(node), S_IFCHR | 0600, makedev(1, 3)) < 0) { perror("mknod"); exit(2); }
    umockdev_testbed_uevent(bed, syspath, "add");
}

/* The device's own node (iommufd): <device>/vfio-dev/vfioN with its dev attribute, and
 * /dev/vfio/devices/vfioN (511:N), N the lowest free number; after the group's node and
 * before the device's bind, as the kernel makes them. */
static void create_device_node(const char *address) {
    char node[64], dir[256], dev[288];
    int number = 0;
    struct stat st;
    for (;; number++) {
        snprintf(node, sizeof node, "/dev/vfio/devices/vfio%d", number);
        if (lstat(at(node), &st) != 0) break;
    }
    snprintf(dir, sizeof dir, "/sys/devices/%s/vfio-dev/vfio%d", address, number);
    g_mkdir_with_parents(at(dir), 0755);
    snprintf(dev, sizeof dev, "%s/dev", dir);
    FILE *file = fopen(at(dev), "w");
    if (!file) { perror("vfio-dev"); exit(2); }
    fprintf(file, "511:%d\n", number);
    fclose(file);
    if (mknod(at(node), S_IFCHR | 0600, makedev(511, number)) < 0) { perror("mknod"); exit(2); }
}

/* And gone again before the device's unbind. */
static void remove_device_node(const char *address) {
    char dir[256];
    snprintf(dir, sizeof dir, "/sys/devices/%s/vfio-dev", address);
    DIR *listing = opendir(at(dir));
    if (!listing) return;
    struct dirent *entry;
    while ((entry = readdir(listing))) {
        if (strncmp(entry->d_name, "vfio", 4) != 0) continue;
        char node[300], path[600];
        snprintf(node, sizeof node, "/dev/vfio/devices/%s", entry->d_name);
        unlink(at(node));
        snprintf(path, sizeof path, "%s/%s/dev", dir, entry->d_name);
        unlink(at(path));
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        rmdir(at(path));
    }
    closedir(listing);
    rmdir(at(dir));
}

static void bind(const char *address, const char *driver) {
    char syspath[256], link[256];
    snprintf(syspath, sizeof syspath, "/sys/devices/%s", address);
    if (strcmp(driver, "vfio-pci") == 0) create_vfio_node(group_of(address));
    if (strcmp(driver, "vfio-pci") == 0) create_device_node(address);
    snprintf(link, sizeof link, "../../bus/pci/drivers/%s", driver);
    umockdev_testbed_set_attribute_link(bed, syspath, "driver", link);
    umockdev_testbed_set_property(bed, syspath, "DRIVER", driver);
    uevent_pci(address, "bind");
}

static void unbind(const char *address) {
    char link[256];
    snprintf(link, sizeof link, "%s/sys/devices/%s/driver", root, address);
    remove_device_node(address);
    unlink(link);
    uevent_pci(address, "unbind");
}

/* A VF as the kernel adds it: IDs from the PF, config space reading all ones where its
 * IDs would be, and no physfn link yet. */
static void add_vf(void) {
    add_pci_whole("0000:4d:00.1", "8086", "56c0", "038000", 41, NULL, 1);
    uevent_pci("0000:4d:00.1", "add");
}

/* Then the links, and a change for the VF and for the PF. */
static void link_vf(void) {
    umockdev_testbed_set_attribute_link(bed, "/sys/devices/0000:4d:00.1", "physfn", "../0000:4d:00.0");
    umockdev_testbed_set_attribute_link(bed, "/sys/devices/0000:4d:00.0", "virtfn0", "../0000:4d:00.1");
    uevent_pci("0000:4d:00.1", "change");
    uevent_pci("0000:4d:00.0", "change");
}

/* Answers one write the agent made, as the kernel would. */
static void react(const char *path, const char *address) {
    char current[64], override[64], file[512];
    if (!address[0]) return;
    driver_of(address, current, sizeof current);
    if (strstr(path, "/drivers_probe")) {
        if (current[0]) return;                      /* bound already: nothing happens */
        snprintf(file, sizeof file, "%s/sys/devices/%s/driver_override", root, address);
        read_file(file, override, sizeof override);
        char driver_dir[300];
        snprintf(driver_dir, sizeof driver_dir, "/sys/bus/pci/drivers/%s", override);
        if (strcmp(override, "(null)") != 0 && override[0] && access(at(driver_dir), F_OK) == 0) bind(address, override);
    } else if (strstr(path, "/sriov_numvfs")) {
        if (strcmp(address, "1") == 0) vf_requested = 1;
    } else if (strstr(path, "/unbind")) {
        const char *driver = strstr(path, "/drivers/") + 9;
        if (current[0] && strncmp(driver, current, strlen(current)) == 0) unbind(address);
    } else if (strstr(path, "/bind")) {
        /* drivers/<d>/bind: binds when unbound and the override allows d. */
        char driver[64];
        snprintf(driver, sizeof driver, "%s", strstr(path, "/drivers/") + 9);
        *strchr(driver, '/') = 0;
        snprintf(file, sizeof file, "%s/sys/devices/%s/driver_override", root, address);
        read_file(file, override, sizeof override);
        int allowed = override[0] == 0 || strcmp(override, "(null)") == 0 || strcmp(override, driver) == 0;
        if (!current[0] && allowed) bind(address, driver);
    }
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void read_control(int index);
static int control_count;
static struct control_file { char path[512]; int fd; char buffer[64]; size_t used; } controls[8];

/* Serves the agent's writes until done() holds or the time is up; returns done(). */
static int serve(double seconds, int (*done)(void)) {
    double end = now() + seconds;
    char buffer[4096];
    while (now() < end) {
        if (done && done()) return 1;
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(watch_fd, &fds);
        int highest = watch_fd;
        for (int i = 0; i < control_count; i++) {
            FD_SET(controls[i].fd, &fds);
            if (controls[i].fd > highest) highest = controls[i].fd;
        }
        struct timeval timeout = {0, 20000};
        if (select(highest + 1, &fds, NULL, NULL, &timeout) <= 0) continue;
        for (int i = 0; i < control_count; i++) if (FD_ISSET(controls[i].fd, &fds)) read_control(i);
        if (!FD_ISSET(watch_fd, &fds)) continue;
        ssize_t n = read(watch_fd, buffer, sizeof buffer);
        for (char *p = buffer; p < buffer + n;) {
            struct inotify_event *event = (struct inotify_event *)p;
            /* Watches are on files; find the path back from the watch descriptor. */
            extern const char *watched_path(int wd);
            char value[64];
            read_file(watched_path(event->wd), value, sizeof value);
            react(watched_path(event->wd), value);
            p += sizeof *event + event->len;
        }
    }
    return done ? done() : 1;
}

static char watched[32][512];
const char *watched_path(int wd) { return wd >= 0 && wd < 32 ? watched[wd] : ""; }

/* A file whose content stays (sriov_numvfs): inotify says it was written. */
static void watch(const char *relative) {
    int wd = inotify_add_watch(watch_fd, at(relative), IN_CLOSE_WRITE);
    if (wd < 0 || wd >= 32) { perror("inotify_add_watch"); exit(2); }
    snprintf(watched[wd], sizeof watched[wd], "%s", at(relative));
}

/* A write-only control file (drivers_probe, bind, unbind) is a FIFO the harness reads:
 * two writes close together stay two writes, as the kernel sees them (inotify on a plain
 * file would merge them into the last one). Each write is one 12-character address. */

static void control(const char *relative) {
    if (mkfifo(at(relative), 0600) < 0) { perror("mkfifo"); exit(2); }
    int fd = open(at(relative), O_RDONLY | O_NONBLOCK);
    open(at(relative), O_WRONLY | O_NONBLOCK);   /* kept open: readers never see EOF */
    snprintf(controls[control_count].path, sizeof controls[0].path, "%s", at(relative));
    controls[control_count].fd = fd;
    controls[control_count++].used = 0;
}

static void read_control(int index) {
    char chunk[256];
    ssize_t n = read(controls[index].fd, chunk, sizeof chunk);
    for (ssize_t i = 0; i < n; i++) {
        if (chunk[i] == '\n') continue;
        controls[index].buffer[controls[index].used++] = chunk[i];
        if (controls[index].used == 12) {
            controls[index].buffer[12] = 0;
            react(controls[index].path, controls[index].buffer);
            controls[index].used = 0;
        }
    }
}

static int owned(int group) {
    char node[64];
    struct stat st;
    snprintf(node, sizeof node, "/dev/vfio/%d", group);
    return lstat(at(node), &st) == 0 && S_ISCHR(st.st_mode) && st.st_uid == 1000 && st.st_gid == 993 &&
           (st.st_mode & 07777) == 0660;
}

static int on_vfio(const char *address) {
    char driver[64];
    driver_of(address, driver, sizeof driver);
    return strcmp(driver, "vfio-pci") == 0;
}

static int vf_was_requested(void) { return vf_requested; }
static int restored(void) {
    char first[64], second[64], override[64];
    driver_of("0000:12:00.0", first, sizeof first);
    driver_of("0000:22:00.0", second, sizeof second);
    read_file(at("/sys/devices/0000:22:00.0/driver_override"), override, sizeof override);
    return first[0] == 0 && strcmp(second, "amdgpu") == 0 && override[0] == 0;
}
/* The node 0000:12:00.0's vfio-dev names, owned as the policy says. */
static int device_node_owned(const char *address) {
    char dir[256];
    snprintf(dir, sizeof dir, "/sys/devices/%s/vfio-dev", address);
    DIR *listing = opendir(at(dir));
    if (!listing) return 0;
    struct dirent *entry;
    int owned_node = 0;
    while ((entry = readdir(listing))) {
        if (strncmp(entry->d_name, "vfio", 4) != 0) continue;
        char node[300];
        struct stat st;
        snprintf(node, sizeof node, "/dev/vfio/devices/%s", entry->d_name);
        owned_node = lstat(at(node), &st) == 0 && S_ISCHR(st.st_mode) && st.st_uid == 1000 && st.st_gid == 993 &&
                     (st.st_mode & 07777) == 0660;
    }
    closedir(listing);
    return owned_node;
}
static int device_node_owned_12(void) { return device_node_owned("0000:12:00.0"); }
static int device_node_owned_22(void) { return device_node_owned("0000:22:00.0"); }
static int iommu_granted(void) { return getxattr(at("/dev/iommu"), "system.posix_acl_access", NULL, 0) > 4; }
static int vf_done(void) { return on_vfio("0000:4d:00.1") && owned(41); }
static int coldplug_done(void) { return on_vfio("0000:12:00.0") && owned(12); }
static int hotplug_done(void) { return on_vfio("0000:22:00.0") && owned(22); }

/* The CDI spec (in the test bed's own directory) names `cdi_text` and not `cdi_gone`. */
static const char *cdi_text, *cdi_gone;
static int cdi_names(void) {
    char spec[65536] = "";
    int fd = open(at("/run-cdi/hotplug-agent.json"), O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, spec, sizeof spec - 1);
    close(fd);
    if (n > 0) spec[n] = 0;
    return strstr(spec, cdi_text) != NULL && (cdi_gone == NULL || strstr(spec, cdi_gone) == NULL);
}

static int log_contains(const char *log, const char *text) {
    char command[2048];
    snprintf(command, sizeof command, "grep -qF -- '%s' '%s'", text, log);
    return system(command) == 0;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s AGENT POLICY_DIR\n", argv[0]); return 2; }
    bed = umockdev_testbed_new();          /* sets UMOCKDEV_DIR for the agent we start */
    root = umockdev_testbed_get_root_dir(bed);
    watch_fd = inotify_init1(IN_CLOEXEC);

    g_mkdir_with_parents(at("/sys/bus/pci/drivers"), 0755);
    g_mkdir_with_parents(at("/dev/vfio/devices"), 0755);
    /* iommufd: /dev/iommu, root 0660 (a stand-in node: only its ACL is looked at). */
    if (mknod(at("/dev/iommu"), S_IFCHR | 0660, makedev(10, 123)) < 0) { perror("mknod iommu"); exit(2); }
    chmod(at("/dev/iommu"), 0660);
    /* In this order: serve() handles the writes of one batch control by control, and for
     * any one device the agent unbinds before it binds or probes (it waits for each probe
     * before its next write), so unbinds first keeps the kernel's order. */
    const char *drivers[] = {"vfio-pci", "amdgpu", "i915"};
    for (int i = 0; i < 3; i++) {
        char dir[128], file[160];
        snprintf(dir, sizeof dir, "/sys/bus/pci/drivers/%s", drivers[i]);
        g_mkdir_with_parents(at(dir), 0755);
        snprintf(file, sizeof file, "%s/unbind", dir); control(file);
    }
    for (int i = 0; i < 3; i++) {
        char file[160];
        snprintf(file, sizeof file, "/sys/bus/pci/drivers/%s/bind", drivers[i]); control(file);
    }
    control("/sys/bus/pci/drivers_probe");
    /* Coldplug: an MI300X nobody has bound (amdgpu blacklisted), and a bridge. */
    add_pci("0000:12:00.0", "1002", "74a1", "120000", 12, NULL);
    add_pci("0000:11:00.0", "1000", "c030", "060400", 11, NULL);
    /* An SR-IOV PF on i915 (seed 002's Flex GPU). */
    add_pci("0000:4d:00.0", "8086", "56c0", "038000", 40, "i915");
    const char *sriov[][2] = {{"sriov_totalvfs", "4\n"}, {"sriov_numvfs", "0\n"}, {"sriov_drivers_autoprobe", "1\n"},
                              {"sriov_offset", "1\n"}, {"sriov_stride", "1\n"}, {"sriov_vf_device", "56c0\n"}};
    for (int i = 0; i < 6; i++) {
        char file[128];
        snprintf(file, sizeof file, "/sys/devices/0000:4d:00.0/%s", sriov[i][0]);
        write_file(file, sriov[i][1]);
    }
    watch("/sys/devices/0000:4d:00.0/sriov_numvfs");

    char log[1100];
    snprintf(log, sizeof log, "%s/agent.log", root);
    pid_t agent = fork();
    if (agent == 0) {
        int out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(out, 1);
        dup2(out, 2);
        setenv("LD_PRELOAD", "libumockdev-preload.so.0", 1);
        setenv("HOTPLUG_AGENT_MODPROBE", "/bin/false", 1);  /* never load a real module */
        char state[1100];
        snprintf(state, sizeof state, "%s/run-hotplug-agent", root);   /* not the real /run */
        char cdi[1100];
        snprintf(cdi, sizeof cdi, "%s/run-cdi", root);                 /* nor the real /run/cdi */
        execl(argv[1], argv[1], "run", "--policy-dir", argv[2], "--state-dir", state, "--cdi-dir", cdi,
              "--log-level", "debug", (char *)NULL);
        _exit(127);
    }

    check(serve(20, coldplug_done), "coldplug: the unbound MI300X is bound to vfio-pci and /dev/vfio/12 is 1000:993 0660");
    char override[64];
    read_file(at("/sys/devices/0000:12:00.0/driver_override"), override, sizeof override);
    check(strcmp(override, "vfio-pci") == 0, "coldplug: driver_override was written");
    check(serve(5, device_node_owned_12), "coldplug: its iommufd node /dev/vfio/devices/vfio0 is 1000:993 0660 too");
    check(serve(5, iommu_granted), "coldplug: /dev/iommu has ACL entries for the VM user");

    /* Hotplug: the kernel binds amdgpu on add before the agent hears of the device. */
    add_pci_whole("0000:22:00.0", "1002", "74a1", "120000", 22, "amdgpu", 0);
    uevent_pci("0000:22:00.0", "add");
    uevent_pci("0000:22:00.0", "bind");
    check(serve(20, hotplug_done), "hotplug: the MI300X that arrived on amdgpu is moved to vfio-pci and /dev/vfio/22 owned");
    check(serve(5, device_node_owned_22), "hotplug: its iommufd node (the next free number) is owned as well");
    cdi_text = "\"name\" : \"0000:22:00.0\"";
    check(serve(5, cdi_names), "CDI: the spec names the hot-added GPU by its address");
    cdi_text = "\"name\" : \"mi300x-1\"";
    check(serve(5, cdi_names), "CDI: and by its policy's name, mi300x-1");

    /* SR-IOV: the agent turns autoprobe off and asks for one VF; the VF appears, and its
     * links follow half a second later. Nothing may be decided about it in between. */
    check(serve(20, vf_was_requested), "sriov: the agent wrote sriov_numvfs for the PF");
    char autoprobe[16];
    read_file(at("/sys/devices/0000:4d:00.0/sriov_drivers_autoprobe"), autoprobe, sizeof autoprobe);
    check(strcmp(autoprobe, "0") == 0, "sriov: autoprobe was turned off first");
    add_vf();
    serve(0.5, NULL);
    read_file(at("/sys/devices/0000:4d:00.1/driver_override"), override, sizeof override);
    check(strcmp(override, "(null)") == 0, "sriov: nothing is decided about the VF before its links exist");
    link_vf();
    check(serve(20, vf_done), "sriov: the VF is bound to vfio-pci once linked and /dev/vfio/41 is owned");

    /* A symlink planted where the node was is refused and its target left alone. */
    write_file("/secret", "root only\n");
    chmod(at("/secret"), 0600);
    unlink(at("/dev/vfio/12"));
    if (symlink(at("/secret"), at("/dev/vfio/12")) < 0) perror("symlink");
    umockdev_testbed_uevent(bed, "/sys/devices/12", "add");
    serve(1.5, NULL);
    struct stat st;
    stat(at("/secret"), &st);
    check(st.st_uid == 0 && (st.st_mode & 0777) == 0600, "a planted /dev/vfio symlink is not followed");
    /* Put a real node back. umockdev's stat wrappers (0.17) unlock before they read the
     * trapped path of a /dev symlink from a static buffer, so a symlink left in /dev lets
     * any other thread's /sys call corrupt that read and abort the process; the agent
     * makes such calls from several worker threads at once. */
    unlink(at("/dev/vfio/12"));
    if (mknod(at("/dev/vfio/12"), S_IFCHR | 0600, makedev(1, 3)) < 0) perror("mknod");

    /* SIGHUP after the MI300X policy is removed: both GPUs go back where they came from,
     * 0000:12:00.0 unbound (no driver had it), 0000:22:00.0 on amdgpu. */
    char policy_file[1100];
    snprintf(policy_file, sizeof policy_file, "%s/50-mi300x.toml", argv[2]);
    FILE *policies = fopen(policy_file, "w");
    fputs("[[policy]]\nname = \"flex-vfs\"\nmatch.pf-ids = [\"8086:56c0\"]\ndriver = \"vfio-pci\"\n", policies);
    fclose(policies);
    kill(agent, SIGHUP);
    check(serve(20, restored), "SIGHUP without the policy: the GPUs are back where they came from");
    check(log_contains(log, "0000:22:00.0 put back on amdgpu: no policy wants it any more"), "log: the restore names device and origin");
    cdi_text = "\"name\" : \"flex-vfs-0\"";
    cdi_gone = "mi300x";
    check(serve(5, cdi_names), "CDI: the GPUs left VFIO and the spec, the Flex VF stays in it");

    serve(0.5, NULL);
    kill(agent, SIGTERM);
    int status = -1;
    for (int i = 0; i < 100 && waitpid(agent, &status, WNOHANG) == 0; i++) usleep(50000);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "SIGTERM: the agent exits 0");

    check(log_contains(log, "info: 0000:12:00.0 [mi300x] bind to vfio-pci (now unbound): policy \"mi300x\" wants vfio-pci"),
          "log: the coldplug decision names device and policy");
    check(log_contains(log, "info: 0000:22:00.0 [mi300x] bind to vfio-pci (now on amdgpu)"),
          "log: the hotplug decision names device and policy");
    check(log_contains(log, "refused: set /dev/vfio/12") && log_contains(log, "is not a character device"),
          "log: the planted symlink is reported");
    check(log_contains(log, "event add pci /devices/0000:22:00.0"), "log: the add uevent came through libudev");
    check(log_contains(log, "warning: 0000:4d:00.1 a VF whose SR-IOV links are not there yet"),
          "log: the VF was seen on add and left until its links existed");
    char bridge_override[64], bridge_driver[64];
    read_file(at("/sys/devices/0000:11:00.0/driver_override"), bridge_override, sizeof bridge_override);
    driver_of("0000:11:00.0", bridge_driver, sizeof bridge_driver);
    check(strcmp(bridge_override, "(null)") == 0 && bridge_driver[0] == 0, "the bridge is untouched");

    if (failed) {
        printf("--- agent log\n");
        fflush(stdout);
        char command[1200];
        snprintf(command, sizeof command, "cat '%s'", log);
        system(command);
    }
    printf("%d passed, %d failed\n", passed, failed);
    g_object_unref(bed);
    return failed ? 1 : 0;
}
