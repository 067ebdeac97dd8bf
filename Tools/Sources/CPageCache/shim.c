#ifndef _GNU_SOURCE
#error "CPageCache needs _GNU_SOURCE (set in Tools/Package.swift cSettings)"
#endif

#include "CPageCache.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef __NR_cachestat
#define __NR_cachestat 451 /* the same number on x86_64 and aarch64 (the unified table) */
#endif

struct cachestat_range_abi {
    uint64_t off;
    uint64_t len;
};

_Static_assert(sizeof(CPageCache_cachestat_counts) == 5 * sizeof(uint64_t), "struct cachestat layout");

int CPageCache_cachestat(int fd, uint64_t offset, uint64_t length, CPageCache_cachestat_counts *counts) {
    struct cachestat_range_abi range = {offset, length};
    long result = syscall(__NR_cachestat, fd, &range, counts, 0);
    return result == 0 ? 0 : errno;
}

int CPageCache_openat(int directory, const char *name, int flags) {
    int fd = openat(directory, name, flags);
    return fd >= 0 ? fd : -errno;
}

int CPageCache_O_NOATIME(void) { return O_NOATIME; }
int CPageCache_O_DIRECTORY(void) { return O_DIRECTORY; }
int CPageCache_O_NOFOLLOW(void) { return O_NOFOLLOW; }
int CPageCache_O_PATH(void) { return O_PATH; }
int CPageCache_AT_NO_AUTOMOUNT(void) { return AT_NO_AUTOMOUNT; }

long CPageCache_filesystemType(int fd) {
    struct statfs info;
    if (fstatfs(fd, &info) != 0) return -errno;
    return (long)info.f_type;
}
