//===----------------------------------------------------------------------===//
// CMmapShim: the only code in MmapKit that calls the kernel.
//
// Every wrapper returns 0 on success or the errno captured immediately after
// the failing call, and hands results back through out-parameters, so Swift
// never reads the thread-local `errno`. Plain flags (MAP_SHARED, MADV_*, ...)
// are imported by Swift from Glibc; this header exports only what Swift cannot
// reach: _GNU_SOURCE-only constants and calls, errno capture, and counters.
//===----------------------------------------------------------------------===//
#ifndef CMMAPSHIM_H
#define CMMAPSHIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Page size

/// The system page size in bytes, read once with sysconf(_SC_PAGESIZE) and cached.
size_t CMmapShim_pageSize(void);

// MARK: - Constants Swift cannot import (_GNU_SOURCE or macro expressions)

extern const int CMmapShim_MREMAP_MAYMOVE;
extern const int CMmapShim_MAP_HUGETLB;
extern const int CMmapShim_MAP_HUGE_SHIFT;
extern const int CMmapShim_MAP_SHARED_VALIDATE;
extern const int CMmapShim_MAP_SYNC;
extern const int CMmapShim_MFD_CLOEXEC;
extern const int CMmapShim_MFD_ALLOW_SEALING;
extern const int CMmapShim_F_SEAL_SHRINK;
extern const int CMmapShim_F_SEAL_GROW;

// MARK: - Memory mapping

/// mmap(2). On success stores the mapping's address in `*result` and counts one live mapping.
int CMmapShim_mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset, void **result);
/// mmap(2) with MAP_FIXED over pages of a mapping MmapKit already holds (a reservation): the
/// pages are replaced, not added, so the mapping counter does not change.
int CMmapShim_mmapInPlace(void *addr, size_t length, int prot, int flags, int fd, int64_t offset);
/// mmap(2) with MAP_FIXED_NOREPLACE (Linux 4.17) at `addr`, into a hole of a mapping MmapKit
/// holds: EEXIST when anything is mapped there now (nothing is replaced). Not counted: it puts
/// back pages of a mapping already counted. Fault injection treats it as mmapInPlace.
int CMmapShim_mmapIntoHole(void *addr, size_t length, int prot, int flags, int fd, int64_t offset);
/// Counts one mapping fewer without a system call: a mapping unmapped piece by piece with
/// CMmapShim_munmapPart, or whose every page the kernel already took.
void CMmapShim_countUnmap(void);
/// munmap(2). On success counts one mapping fewer.
int CMmapShim_munmap(void *addr, size_t length);
/// munmap(2) of a part of a mapping that is unmapped piece by piece (the mapping counter does
/// not change: CMmapShim_countUnmap counts the mapping once every piece is gone).
int CMmapShim_munmapPart(void *addr, size_t length);
/// mprotect(2).
int CMmapShim_mprotect(void *addr, size_t length, int prot);
/// msync(2).
int CMmapShim_msync(void *addr, size_t length, int flags);
/// madvise(2); EINTR (MADV_POPULATE_* when a signal arrives) is retried.
int CMmapShim_madvise(void *addr, size_t length, int advice);
/// madvise(2) of [addr, addr + length) on up to `threads` threads: the range is split into
/// `threads` chunks of whole `alignment`-byte pages (never fewer than `minimumChunk` bytes each,
/// so a small range uses fewer threads, down to the caller's alone); the first chunk runs on the
/// calling thread, the others on threads made with pthread_create(3) (a chunk whose thread
/// cannot be made runs on the caller after its own), and every thread is joined before the call
/// returns. EINTR is retried per chunk. Returns 0 when every chunk succeeded, else the errno of
/// the lowest failing chunk (each captured on its own thread). Fault injection counts and fails
/// it as one madvise call of the calling thread, before any thread starts.
int CMmapShim_madviseParallel(void *addr, size_t length, int advice, int threads, size_t alignment,
                              size_t minimumChunk);
/// mlock(2).
int CMmapShim_mlock(const void *addr, size_t length);
/// munlock(2).
int CMmapShim_munlock(const void *addr, size_t length);
/// mremap(2) without MREMAP_FIXED. On success stores the (possibly moved) address in `*result`.
int CMmapShim_mremap(void *oldAddress, size_t oldLength, size_t newLength, int flags, void **result);
/// mincore(2): one byte per page into `vec`.
int CMmapShim_mincore(void *addr, size_t length, unsigned char *vec);

// MARK: - Files

/// open(2) with O_CLOEXEC added; EINTR is retried.
int CMmapShim_open(const char *path, int flags, int mode, int *fd);
/// close(2); never retried (on Linux the descriptor is released even on EINTR).
int CMmapShim_close(int fd);
/// fstat(2) reduced to what MmapKit needs: the size and the file type bits (S_IFMT).
int CMmapShim_fstat(int fd, int64_t *size, unsigned int *type);
/// The huge page sizes this kernel supports (its /sys/kernel/mm/hugepages/hugepages-<size>kB
/// directories), as a bit mask of powers of two (bit n set: 2^n bytes), read once and cached;
/// 0 when there is none (no hugetlbfs), or when sysfs cannot be read.
uint64_t CMmapShim_hugePageSizes(void);
/// fstatfs(2) reduced to what MmapKit needs: the huge page size of a file on hugetlbfs (whose
/// mappings the kernel makes in whole huge pages), or 0 for a file on any other file system.
int CMmapShim_hugeTLBPageSize(int fd, int64_t *pageSize);
/// fcntl(F_GETFL) reduced to the access mode: O_RDONLY, O_WRONLY or O_RDWR.
int CMmapShim_accessMode(int fd, int *mode);
/// ftruncate(2); EINTR is retried.
int CMmapShim_ftruncate(int fd, int64_t length);
/// fallocate(2) with mode 0 (allocate blocks and extend the size); EINTR is retried.
int CMmapShim_fallocate(int fd, int64_t offset, int64_t length);
/// fdatasync(2); EINTR is retried.
int CMmapShim_fdatasync(int fd);
/// memfd_create(2).
int CMmapShim_memfd_create(const char *name, unsigned int flags, int *fd);
/// fcntl(fd, F_DUPFD_CLOEXEC, 0) into `*duplicate`.
int CMmapShim_dupCloexec(int fd, int *duplicate);
/// fcntl(fd, F_ADD_SEALS, seals).
int CMmapShim_addSeals(int fd, int seals);

// MARK: - Errors and resource limits

/// The symbolic name of `error` ("EBADF"), or NULL when unknown. Thread-safe.
const char *CMmapShim_errnoName(int error);
/// The description of `error` ("Bad file descriptor"), or NULL when unknown. Thread-safe.
const char *CMmapShim_errnoDescription(int error);
/// The soft RLIMIT_MEMLOCK in bytes (UINT64_MAX when unlimited).
int CMmapShim_memlockLimit(uint64_t *bytes);

// MARK: - Guarded access (guard.c)

// Each guarded call installs MmapKit's SIGBUS handler on first use (once per process) and
// returns the errno of sigaction(2) if that failed.
/// memcpy(destination, source, length) with SIGBUS guarded in [armed, armed + armedLength)
/// (the mapped side). Returns 0, EFAULT with `*faultAddress` set when a page in the armed range
/// faulted, or the install error.
int CMmapShim_guardedCopy(void *destination, const void *source, size_t length, const void *armed,
                          size_t armedLength, void **faultAddress);
/// Loads `size` bytes at `source` into `out` (one access when size is 1, 2, 4 or 8 and
/// aligned), guarded. Returns as CMmapShim_guardedCopy.
int CMmapShim_guardedLoad(const void *source, size_t size, void *out, void **faultAddress);
/// Stores `size` bytes from `value` at `destination`, guarded.
int CMmapShim_guardedStore(void *destination, size_t size, const void *value, void **faultAddress);
/// Reads one byte of every page of [address, address + length), guarded.
int CMmapShim_guardedPrefault(const void *address, size_t length, void **faultAddress);

// MARK: - Fault injection (testing builds only)
//
// Built only when MMAPKIT_FAULT_INJECTION is defined (Package.swift defines it in debug builds):
// release builds compile every wrapper without the check. The state is thread-local, so a test
// fails the calls of its own thread only.

/// The wrapped system calls, in the order of `CMmapShim_Call_count`.
typedef enum {
    CMmapShim_Call_mmap = 0,
    CMmapShim_Call_mmapInPlace,
    CMmapShim_Call_munmap,
    CMmapShim_Call_mprotect,
    CMmapShim_Call_msync,
    CMmapShim_Call_madvise,
    CMmapShim_Call_mlock,
    CMmapShim_Call_munlock,
    CMmapShim_Call_mremap,
    CMmapShim_Call_mincore,
    CMmapShim_Call_open,
    CMmapShim_Call_close,
    CMmapShim_Call_fstat,
    CMmapShim_Call_ftruncate,
    CMmapShim_Call_fallocate,
    CMmapShim_Call_fdatasync,
    CMmapShim_Call_memfd_create,
    CMmapShim_Call_dupCloexec,
    CMmapShim_Call_addSeals,
    CMmapShim_Call_fstatfs,
    CMmapShim_Call_getFileFlags,
    CMmapShim_Call_count
} CMmapShim_Call;

/// 1 when this build has the fault-injection seam, else 0.
int CMmapShim_faultInjectionAvailable(void);
/// On the calling thread, lets the next `skip` calls of `call` through, then makes the `times`
/// calls after them fail with `error` without reaching the kernel. With `removingFirst` (only
/// for `CMmapShim_Call_mmapInPlace`) the old pages are unmapped first, as the kernel does when a
/// file's mmap handler fails after MAP_FIXED removed them.
void CMmapShim_injectFailure(CMmapShim_Call call, int64_t skip, int64_t times, int error, int removingFirst);
/// Disarms every injected failure of the calling thread and resets its call counts.
void CMmapShim_resetFaultInjection(void);
/// How many times the calling thread reached `call` since the last reset (injected failures
/// included).
int64_t CMmapShim_callCount(CMmapShim_Call call);

// MARK: - Mapping counter (for tests)

/// Mappings made through the shim and not yet unmapped (maps minus unmaps).
/// Kept in every build: it is one relaxed atomic add next to a syscall.
int64_t CMmapShim_liveMappings(void);
/// Total successful mmap calls made through the shim since the process started.
int64_t CMmapShim_mapCalls(void);
/// Total successful munmap calls made through the shim since the process started.
int64_t CMmapShim_unmapCalls(void);

#ifdef __cplusplus
}
#endif

#endif // CMMAPSHIM_H
