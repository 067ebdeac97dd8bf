//===----------------------------------------------------------------------===//
// CMmapShim: syscall wrappers with errno captured right after each call.
//===----------------------------------------------------------------------===//
#ifndef _GNU_SOURCE
#error "CMmapShim needs _GNU_SOURCE (mremap, memfd_create, fallocate, strerrorname_np); Package.swift defines it."
#endif

#include "CMmapShim.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <fcntl.h>
#include <linux/mman.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <unistd.h>

_Static_assert(sizeof(off_t) == 8, "MmapKit maps 64-bit file offsets; off_t must be 64 bits");
_Static_assert(sizeof(size_t) == 8, "MmapKit supports 64-bit Linux only");

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

const int CMmapShim_MREMAP_MAYMOVE = MREMAP_MAYMOVE;
const int CMmapShim_MAP_HUGETLB = MAP_HUGETLB;
const int CMmapShim_MAP_HUGE_SHIFT = MAP_HUGE_SHIFT;
const int CMmapShim_MAP_SHARED_VALIDATE = MAP_SHARED_VALIDATE;
const int CMmapShim_MAP_SYNC = MAP_SYNC;
const int CMmapShim_MFD_CLOEXEC = MFD_CLOEXEC;
const int CMmapShim_MFD_ALLOW_SEALING = MFD_ALLOW_SEALING;
const int CMmapShim_F_SEAL_SHRINK = F_SEAL_SHRINK;
const int CMmapShim_F_SEAL_GROW = F_SEAL_GROW;

// MARK: - Page size

static _Atomic size_t cachedPageSize = 0;

size_t CMmapShim_pageSize(void) {
    size_t size = atomic_load_explicit(&cachedPageSize, memory_order_relaxed);
    if (size == 0) {
        // Racing initialisations store the same value; relaxed ordering is enough.
        size = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&cachedPageSize, size, memory_order_relaxed);
    }
    return size;
}

// MARK: - Huge page sizes

static pthread_once_t hugePageSizeOnce = PTHREAD_ONCE_INIT;
static uint64_t hugePageSizes = 0;

static void readHugePageSizes(void) {
    DIR *directory = opendir("/sys/kernel/mm/hugepages");
    if (directory == NULL) return;
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        unsigned long kilobytes = 0;
        if (sscanf(entry->d_name, "hugepages-%lukB", &kilobytes) != 1 || kilobytes == 0) continue;
        uint64_t size = (uint64_t)kilobytes << 10;
        if ((size & (size - 1)) == 0) hugePageSizes |= size;  // page sizes are powers of two
    }
    closedir(directory);
}

uint64_t CMmapShim_hugePageSizes(void) {
    pthread_once(&hugePageSizeOnce, readHugePageSizes);
    return hugePageSizes;
}

// MARK: - Mapping counter

static _Atomic int64_t mapCalls = 0;
static _Atomic int64_t unmapCalls = 0;

int64_t CMmapShim_mapCalls(void) { return atomic_load_explicit(&mapCalls, memory_order_relaxed); }
int64_t CMmapShim_unmapCalls(void) { return atomic_load_explicit(&unmapCalls, memory_order_relaxed); }
int64_t CMmapShim_liveMappings(void) {
    // Read unmaps first: a concurrent map/unmap pair can only make the result larger, never negative.
    int64_t unmaps = atomic_load_explicit(&unmapCalls, memory_order_acquire);
    int64_t maps = atomic_load_explicit(&mapCalls, memory_order_acquire);
    return maps - unmaps;
}

// MARK: - Fault injection

#ifdef MMAPKIT_FAULT_INJECTION
typedef struct {
    int64_t skip[CMmapShim_Call_count];  // calls to let through before failing; -1 when disarmed
    int64_t times[CMmapShim_Call_count];  // calls to fail once the skipped ones have passed
    int error[CMmapShim_Call_count];
    int removingFirst[CMmapShim_Call_count];
    int64_t calls[CMmapShim_Call_count];
    int initialized;
} FaultInjection;

static _Thread_local FaultInjection injection;

static void resetInjection(void) {
    for (int call = 0; call < CMmapShim_Call_count; call++) {
        injection.skip[call] = -1;
        injection.times[call] = 0;
        injection.error[call] = 0;
        injection.removingFirst[call] = 0;
        injection.calls[call] = 0;
    }
    injection.initialized = 1;
}

int CMmapShim_faultInjectionAvailable(void) { return 1; }

void CMmapShim_injectFailure(CMmapShim_Call call, int64_t skip, int64_t times, int error, int removingFirst) {
    if (!injection.initialized) resetInjection();
    injection.skip[call] = skip;
    injection.times[call] = times;
    injection.error[call] = error;
    injection.removingFirst[call] = removingFirst;
}

void CMmapShim_resetFaultInjection(void) { resetInjection(); }

int64_t CMmapShim_callCount(CMmapShim_Call call) { return injection.initialized ? injection.calls[call] : 0; }

// The errno to fail this call of `call` with, or 0 to make the real call.
static int injectedError(CMmapShim_Call call) {
    if (!injection.initialized) resetInjection();
    injection.calls[call] += 1;
    if (injection.skip[call] < 0) return 0;
    if (injection.skip[call] > 0) {
        injection.skip[call] -= 1;
        return 0;
    }
    injection.times[call] -= 1;
    if (injection.times[call] <= 0) injection.skip[call] = -1;  // disarmed after `times` failures
    return injection.error[call];
}

#define INJECT(call)                                                                        \
    do {                                                                                    \
        int injected_ = injectedError(CMmapShim_Call_##call);                               \
        if (injected_ != 0) return injected_;                                               \
    } while (0)
#else
int CMmapShim_faultInjectionAvailable(void) { return 0; }
void CMmapShim_injectFailure(CMmapShim_Call call, int64_t skip, int64_t times, int error, int removingFirst) {
    (void)call, (void)skip, (void)times, (void)error, (void)removingFirst;
}
void CMmapShim_resetFaultInjection(void) {}
int64_t CMmapShim_callCount(CMmapShim_Call call) { return (void)call, 0; }
#define INJECT(call) ((void)0)
#endif

// MARK: - Memory mapping

int CMmapShim_mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset, void **result) {
    INJECT(mmap);
    void *address = mmap(addr, length, prot, flags, fd, (off_t)offset);
    if (address == MAP_FAILED) return errno;
    atomic_fetch_add_explicit(&mapCalls, 1, memory_order_release);
    *result = address;
    return 0;
}

int CMmapShim_mmapInPlace(void *addr, size_t length, int prot, int flags, int fd, int64_t offset) {
#ifdef MMAPKIT_FAULT_INJECTION
    int removing = injection.initialized && injection.removingFirst[CMmapShim_Call_mmapInPlace];
    int injected = injectedError(CMmapShim_Call_mmapInPlace);
    if (injected != 0) {
        // As the kernel does when a file's mmap handler fails after MAP_FIXED removed the pages.
        if (removing) munmap(addr, length);
        return injected;
    }
#endif
    void *address = mmap(addr, length, prot, flags | MAP_FIXED, fd, (off_t)offset);
    if (address == MAP_FAILED) return errno;
    if (address != addr) {
        // MAP_FIXED never moves a mapping; if the kernel ever did, undo it rather than leak.
        munmap(address, length);
        return EINVAL;
    }
    return 0;
}

int CMmapShim_munmap(void *addr, size_t length) {
    INJECT(munmap);
    if (munmap(addr, length) != 0) return errno;
    atomic_fetch_add_explicit(&unmapCalls, 1, memory_order_release);
    return 0;
}

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

int CMmapShim_mmapIntoHole(void *addr, size_t length, int prot, int flags, int fd, int64_t offset) {
    INJECT(mmapInPlace);
    void *address = mmap(addr, length, prot, flags | MAP_FIXED_NOREPLACE, fd, (off_t)offset);
    if (address == MAP_FAILED) return errno;
    if (address != addr) {
        // A kernel before 4.17 reads the flag as a hint and maps elsewhere: undo, and report
        // that the place is not free, which is all MmapKit may assume.
        munmap(address, length);
        return EEXIST;
    }
    return 0;
}

void CMmapShim_countUnmap(void) { atomic_fetch_add_explicit(&unmapCalls, 1, memory_order_release); }

int CMmapShim_munmapPart(void *addr, size_t length) {
    INJECT(munmap);
    return munmap(addr, length) == 0 ? 0 : errno;
}

int CMmapShim_mprotect(void *addr, size_t length, int prot) {
    INJECT(mprotect);
    return mprotect(addr, length, prot) == 0 ? 0 : errno;
}

int CMmapShim_msync(void *addr, size_t length, int flags) {
    INJECT(msync);
    return msync(addr, length, flags) == 0 ? 0 : errno;
}

int CMmapShim_madvise(void *addr, size_t length, int advice) {
    INJECT(madvise);
    for (;;) {
        if (madvise(addr, length, advice) == 0) return 0;
        if (errno != EINTR) return errno;
    }
}

// One chunk of CMmapShim_madviseParallel: its range, and the errno its madvise captured.
typedef struct {
    void *addr;
    size_t length;
    int advice;
    int error;
} MadviseChunk;

static void *madviseChunk(void *argument) {
    MadviseChunk *chunk = argument;
    chunk->error = 0;
    while (madvise(chunk->addr, chunk->length, chunk->advice) != 0) {
        if (errno != EINTR) {
            chunk->error = errno;
            break;
        }
    }
    return NULL;
}

#define MADVISE_PARALLEL_MAX_THREADS 256

int CMmapShim_madviseParallel(void *addr, size_t length, int advice, int threads, size_t alignment,
                              size_t minimumChunk) {
    INJECT(madvise);  // on the calling thread, before any other thread exists
    if (length == 0) return 0;
    if (alignment == 0) return EINVAL;
    size_t pages = (length + alignment - 1) / alignment;
    size_t limit = minimumChunk > alignment ? length / minimumChunk : pages;
    size_t count = threads < 1 ? 1 : (size_t)threads;
    if (count > MADVISE_PARALLEL_MAX_THREADS) count = MADVISE_PARALLEL_MAX_THREADS;
    if (count > limit) count = limit;
    if (count > pages) count = pages;
    if (count <= 1) {
        MadviseChunk whole = {addr, length, advice, 0};
        madviseChunk(&whole);
        return whole.error;
    }
    MadviseChunk chunks[MADVISE_PARALLEL_MAX_THREADS];
    pthread_t workers[MADVISE_PARALLEL_MAX_THREADS];
    int started[MADVISE_PARALLEL_MAX_THREADS];
    // Whole pages per chunk, the remainder spread over the first chunks; the last chunk ends at
    // `length` (which need not be a whole number of pages: the kernel rounds it up itself).
    size_t per = pages / count, extra = pages % count, offset = 0;
    for (size_t index = 0; index < count; index++) {
        size_t chunkPages = per + (index < extra ? 1 : 0);
        size_t end = index == count - 1 ? length : offset + chunkPages * alignment;
        chunks[index] = (MadviseChunk){(char *)addr + offset, end - offset, advice, 0};
        offset = end;
    }
    pthread_attr_t attributes;
    int haveAttributes = pthread_attr_init(&attributes) == 0;
    if (haveAttributes) pthread_attr_setstacksize(&attributes, 64 * 1024);  // madvise needs little stack
    for (size_t index = 1; index < count; index++) {
        started[index] =
            pthread_create(&workers[index], haveAttributes ? &attributes : NULL, madviseChunk, &chunks[index]) == 0;
    }
    if (haveAttributes) pthread_attr_destroy(&attributes);
    madviseChunk(&chunks[0]);
    for (size_t index = 1; index < count; index++) {
        if (started[index]) {
            pthread_join(workers[index], NULL);
        } else {
            madviseChunk(&chunks[index]);  // no thread (EAGAIN, ...): the caller does this chunk too
        }
    }
    for (size_t index = 0; index < count; index++) {
        if (chunks[index].error != 0) return chunks[index].error;
    }
    return 0;
}

int CMmapShim_mlock(const void *addr, size_t length) {
    INJECT(mlock);
    return mlock(addr, length) == 0 ? 0 : errno;
}

int CMmapShim_munlock(const void *addr, size_t length) {
    INJECT(munlock);
    return munlock(addr, length) == 0 ? 0 : errno;
}

int CMmapShim_mremap(void *oldAddress, size_t oldLength, size_t newLength, int flags, void **result) {
    INJECT(mremap);
    void *address = mremap(oldAddress, oldLength, newLength, flags);
    if (address == MAP_FAILED) return errno;
    *result = address;
    return 0;
}

int CMmapShim_mincore(void *addr, size_t length, unsigned char *vec) {
    INJECT(mincore);
    return mincore(addr, length, vec) == 0 ? 0 : errno;
}

// MARK: - Files

int CMmapShim_open(const char *path, int flags, int mode, int *fd) {
    INJECT(open);
    for (;;) {
        int result = open(path, flags | O_CLOEXEC, (mode_t)mode);
        if (result >= 0) {
            *fd = result;
            return 0;
        }
        if (errno != EINTR) return errno;
    }
}

int CMmapShim_close(int fd) {
    int result = close(fd) == 0 ? 0 : errno;
#ifdef MMAPKIT_FAULT_INJECTION
    // Linux releases the descriptor even when close fails, so an injected failure closes too.
    int injected = injectedError(CMmapShim_Call_close);
    if (injected != 0) return injected;
#endif
    return result;
}

int CMmapShim_fstat(int fd, int64_t *size, unsigned int *type) {
    INJECT(fstat);
    struct stat st;
    if (fstat(fd, &st) != 0) return errno;
    *size = (int64_t)st.st_size;
    *type = (unsigned int)(st.st_mode & S_IFMT);
    return 0;
}

int CMmapShim_hugeTLBPageSize(int fd, int64_t *pageSize) {
    INJECT(fstatfs);
    struct statfs fs;
    if (fstatfs(fd, &fs) != 0) return errno;
    *pageSize = fs.f_type == HUGETLBFS_MAGIC ? (int64_t)fs.f_bsize : 0;
    return 0;
}

int CMmapShim_accessMode(int fd, int *mode) {
    INJECT(getFileFlags);
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return errno;
    *mode = flags & O_ACCMODE;
    return 0;
}

int CMmapShim_ftruncate(int fd, int64_t length) {
    INJECT(ftruncate);
    for (;;) {
        if (ftruncate(fd, (off_t)length) == 0) return 0;
        if (errno != EINTR) return errno;
    }
}

int CMmapShim_fallocate(int fd, int64_t offset, int64_t length) {
    INJECT(fallocate);
    for (;;) {
        if (fallocate(fd, 0, (off_t)offset, (off_t)length) == 0) return 0;
        if (errno != EINTR) return errno;
    }
}

int CMmapShim_fdatasync(int fd) {
    INJECT(fdatasync);
    for (;;) {
        if (fdatasync(fd) == 0) return 0;
        if (errno != EINTR) return errno;
    }
}

int CMmapShim_memfd_create(const char *name, unsigned int flags, int *fd) {
    INJECT(memfd_create);
    int result = memfd_create(name, flags);
    if (result < 0) return errno;
    *fd = result;
    return 0;
}

int CMmapShim_dupCloexec(int fd, int *duplicate) {
    INJECT(dupCloexec);
    int result = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (result < 0) return errno;
    *duplicate = result;
    return 0;
}

int CMmapShim_addSeals(int fd, int seals) {
    INJECT(addSeals);
    return fcntl(fd, F_ADD_SEALS, seals) == 0 ? 0 : errno;
}

// MARK: - Errors and limits

const char *CMmapShim_errnoName(int error) { return strerrorname_np(error); }

const char *CMmapShim_errnoDescription(int error) { return strerrordesc_np(error); }

int CMmapShim_memlockLimit(uint64_t *bytes) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_MEMLOCK, &limit) != 0) return errno;
    *bytes = limit.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)limit.rlim_cur;
    return 0;
}

// The Swift overlay spells these advice values as literals (MmapAdvice.swift); keep them honest.
#ifdef MADV_COLLAPSE
_Static_assert(MADV_COLLAPSE == 25, "MADV_COLLAPSE");
#endif
_Static_assert(MADV_FREE == 8 && MADV_WIPEONFORK == 18 && MADV_KEEPONFORK == 19, "MADV_* values");
_Static_assert(MADV_COLD == 20 && MADV_PAGEOUT == 21, "MADV_COLD/PAGEOUT");
_Static_assert(MADV_POPULATE_READ == 22 && MADV_POPULATE_WRITE == 23, "MADV_POPULATE_*");
