//===----------------------------------------------------------------------===//
// Guarded access: a SIGBUS on a page that the file no longer backs becomes an
// error value instead of killing the process.
//
// The handler is installed once. Each guarded primitive arms a thread-local
// scope (an address range and a sigjmp_buf, linked to the previous scope so
// scopes nest), calls sigsetjmp, does its memory access, and disarms, all in
// one C frame: no Swift frame ever sits between sigsetjmp and siglongjmp.
// The handler jumps back only for a fault inside the calling thread's armed
// range; every other SIGBUS goes to the handler installed before MmapKit's.
//===----------------------------------------------------------------------===//
#ifndef _GNU_SOURCE
#error "CMmapShim needs _GNU_SOURCE; Package.swift defines it."
#endif

#include "CMmapShim.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

typedef struct GuardScope {
    uintptr_t low;
    uintptr_t high;
    sigjmp_buf *jump;
    struct GuardScope *previous;
    void *volatile faultAddress;
} GuardScope;

// The calling thread's innermost armed scope. Written when arming (so a dynamic-TLS slot is
// allocated outside the handler), read by the handler.
static _Thread_local GuardScope *volatile currentScope = NULL;

static struct sigaction previousAction;
static pthread_once_t installOnce = PTHREAD_ONCE_INIT;
static atomic_int installError = 0;

static void handleSIGBUS(int signal, siginfo_t *info, void *context) {
    GuardScope *scope = currentScope;
    uintptr_t address = (uintptr_t)info->si_addr;
    if (scope != NULL && address >= scope->low && address < scope->high) {
        scope->faultAddress = info->si_addr;
        siglongjmp(*scope->jump, 1);
    }
    // Not ours: behave as if MmapKit's handler were not there.
    if (previousAction.sa_flags & SA_SIGINFO) {
        previousAction.sa_sigaction(signal, info, context);
        return;
    }
    // Emulate the old disposition without uninstalling: MmapKit's guard must survive any
    // signal it does not own. si_code <= 0: sent by kill(2), sigqueue(3) or raise(3).
    int sent = info->si_code <= 0;
    if (previousAction.sa_handler == SIG_IGN && sent) return;  // ignored, as it would have been
    if (previousAction.sa_handler == SIG_DFL || previousAction.sa_handler == SIG_IGN) {
        // The default action terminates the process (a real fault is never ignorable: the
        // kernel forces the default for it). Restore it and let the signal take effect: a
        // fault repeats when we return, a sent signal is raised again.
        struct sigaction fallback;
        memset(&fallback, 0, sizeof fallback);
        fallback.sa_handler = SIG_DFL;
        sigemptyset(&fallback.sa_mask);
        sigaction(SIGBUS, &fallback, NULL);
        if (sent) raise(signal);
        return;
    }
    previousAction.sa_handler(signal);
}

static void install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = handleSIGBUS;
    sigemptyset(&action.sa_mask);
    // SA_NODEFER: SIGBUS is not blocked in the handler, so sigsetjmp(..., 0) need not save
    // the mask and jumping out leaves nothing blocked.
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    if (sigaction(SIGBUS, &action, &previousAction) != 0) atomic_store(&installError, errno);
}

/// Installs MmapKit's SIGBUS handler once (later calls only return the first result).
/// Returns 0 or the errno of sigaction(2).
static int guardInstall(void) {
    pthread_once(&installOnce, install);
    return atomic_load(&installError);
}

// Arms `scope` for [low, low + length), runs ACCESS, disarms. On a fault in the range,
// stores the faulting address and returns EFAULT.
#define GUARDED(low_, length_, faultAddress_, ACCESS)                                   \
    do {                                                                                \
        int installResult = guardInstall();                                             \
        if (installResult != 0) return installResult;                                   \
        sigjmp_buf jump;                                                                \
        GuardScope scope;                                                               \
        scope.low = (uintptr_t)(low_);                                                  \
        scope.high = (uintptr_t)(low_) + (length_);                                     \
        scope.jump = &jump;                                                             \
        scope.previous = currentScope;                                                  \
        scope.faultAddress = NULL;                                                      \
        if (sigsetjmp(jump, 0) != 0) {                                                  \
            currentScope = scope.previous;                                              \
            atomic_signal_fence(memory_order_seq_cst);                                  \
            *(faultAddress_) = scope.faultAddress;                                      \
            return EFAULT;                                                              \
        }                                                                               \
        currentScope = &scope;                                                          \
        atomic_signal_fence(memory_order_seq_cst);                                      \
        ACCESS;                                                                         \
        atomic_signal_fence(memory_order_seq_cst);                                      \
        currentScope = scope.previous;                                                  \
        return 0;                                                                       \
    } while (0)

int CMmapShim_guardedCopy(void *destination, const void *source, size_t length, const void *armed,
                          size_t armedLength, void **faultAddress) {
    GUARDED(armed, armedLength, faultAddress, memcpy(destination, source, length));
}

static void loadValue(const void *source, size_t size, void *out) {
    if (((uintptr_t)source & (size - 1)) == 0) {
        switch (size) {
        case 1: *(uint8_t *)out = *(const volatile uint8_t *)source; return;
        case 2: *(uint16_t *)out = *(const volatile uint16_t *)source; return;
        case 4: *(uint32_t *)out = *(const volatile uint32_t *)source; return;
        case 8: *(uint64_t *)out = *(const volatile uint64_t *)source; return;
        default: break;
        }
    }
    memcpy(out, source, size);
}

static void storeValue(void *destination, size_t size, const void *value) {
    if (((uintptr_t)destination & (size - 1)) == 0) {
        switch (size) {
        case 1: *(volatile uint8_t *)destination = *(const uint8_t *)value; return;
        case 2: *(volatile uint16_t *)destination = *(const uint16_t *)value; return;
        case 4: *(volatile uint32_t *)destination = *(const uint32_t *)value; return;
        case 8: *(volatile uint64_t *)destination = *(const uint64_t *)value; return;
        default: break;
        }
    }
    memcpy(destination, value, size);
}

int CMmapShim_guardedLoad(const void *source, size_t size, void *out, void **faultAddress) {
    GUARDED(source, size, faultAddress, loadValue(source, size, out));
}

int CMmapShim_guardedStore(void *destination, size_t size, const void *value, void **faultAddress) {
    GUARDED(destination, size, faultAddress, storeValue(destination, size, value));
}

static void touchPages(const void *address, size_t length, size_t pageSize) {
    const volatile uint8_t *bytes = (const volatile uint8_t *)address;
    uintptr_t first = (uintptr_t)address & ~(uintptr_t)(pageSize - 1);
    for (uintptr_t page = first; page < (uintptr_t)address + length; page += pageSize) {
        size_t offset = page < (uintptr_t)address ? 0 : page - (uintptr_t)address;
        (void)bytes[offset];
    }
}

int CMmapShim_guardedPrefault(const void *address, size_t length, void **faultAddress) {
    size_t pageSize = CMmapShim_pageSize();
    GUARDED(address, length, faultAddress, touchPages(address, length, pageSize));
}
