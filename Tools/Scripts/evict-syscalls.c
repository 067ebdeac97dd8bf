// The raw-syscall baseline of `mmapkit evict` for pagecache-bench.py: for each file named, the
// system calls `mmapkit evict FILE` makes (strace -f), in its order, and nothing else: stat,
// open, fstatfs, fstat, cachestat before, fdatasync if dirty, posix_fadvise(DONTNEED), cachestat
// after, close; then one write of a short report. A static C program: what is left between it
// and mmapkit is the cost of the Swift program around the same kernel work.
//
//   cc -O2 -static -o evict-syscalls evict-syscalls.c   (pagecache-bench.py builds it)
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

struct range { uint64_t offset, length; };
struct counts { uint64_t cache, dirty, writeback, evicted, recently_evicted; };

static int cachestat(int fd, struct counts *counts) {
    struct range all = {0, 0};
    return (int)syscall(__NR_cachestat, fd, &all, counts, 0);
}

int main(int argc, char **argv) {
    char report[4096];
    size_t used = 0;
    int status = 0;
    for (int i = 1; i < argc; i++) {
        struct stat named, opened;
        struct statfs filesystem;
        struct counts before, after;
        if (stat(argv[i], &named) != 0) { perror(argv[i]); status = 1; continue; }
        int fd = open(argv[i], O_RDONLY | O_NONBLOCK | O_NOATIME | O_CLOEXEC);
        if (fd < 0) { perror(argv[i]); status = 1; continue; }
        if (fstatfs(fd, &filesystem) != 0 || fstat(fd, &opened) != 0 || cachestat(fd, &before) != 0) {
            perror(argv[i]);
            close(fd);
            status = 1;
            continue;
        }
        if (before.dirty > 0 || before.writeback > 0) fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        if (cachestat(fd, &after) != 0) { perror(argv[i]); status = 1; }
        close(fd);
        int n = snprintf(report + used, sizeof report - used, "%llu -> %llu pages resident  %s\n",
                         (unsigned long long)before.cache, (unsigned long long)after.cache, argv[i]);
        if (n > 0 && (size_t)n < sizeof report - used) used += (size_t)n;
    }
    if (used > 0 && write(1, report, used) < 0) status = 1;
    return status;
}
