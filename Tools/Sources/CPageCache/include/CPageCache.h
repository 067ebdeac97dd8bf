#ifndef CPAGECACHE_H
#define CPAGECACHE_H

#include <stdint.h>

/// The five counters of cachestat(2), in the kernel's order.
typedef struct {
    uint64_t cache;
    uint64_t dirty;
    uint64_t writeback;
    uint64_t evicted;
    uint64_t recentlyEvicted;
} CPageCache_cachestat_counts;

/// cachestat(2) (Linux 6.5+, syscall 451 on x86_64 and aarch64) over [offset, offset + length);
/// length 0 means to the end of the file. Returns 0 or the errno (ENOSYS on older kernels).
int CPageCache_cachestat(int fd, uint64_t offset, uint64_t length, CPageCache_cachestat_counts *counts);

/// openat(2) without the variadic mode argument; returns the descriptor or -errno.
int CPageCache_openat(int directory, const char *name, int flags);

/// The flags Swift's Glibc module does not export without _GNU_SOURCE.
int CPageCache_O_NOATIME(void);
int CPageCache_O_DIRECTORY(void);
int CPageCache_O_NOFOLLOW(void);
int CPageCache_O_PATH(void);
int CPageCache_AT_NO_AUTOMOUNT(void);

/// fstatfs(2)'s f_type, or -errno.
long CPageCache_filesystemType(int fd);

#endif
