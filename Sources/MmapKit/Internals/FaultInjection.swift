internal import CMmapShim
import Synchronization

/// The fault-injection seam of the syscall chokepoint, for tests. Not API (underscored).
///
/// In debug builds every wrapper of the C shim asks, before it calls the kernel, whether the
/// calling thread armed a failure for it; release builds compile the wrappers without the check
/// (``isAvailable`` is then `false` and arming does nothing). The state is thread-local: a test
/// fails only the calls its own thread makes.
public enum _MmapFaultInjection {
    /// A wrapped system call.
    public enum Call: CaseIterable, Sendable, CustomStringConvertible {
        case mmap
        /// `mmap(2)` with `MAP_FIXED` over pages MmapKit already holds (reservation commits).
        case mmapInPlace
        case munmap
        case mprotect
        case msync
        case madvise
        case mlock
        case munlock
        case mremap
        case mincore
        case open
        case close
        case fstat
        case ftruncate
        case fallocate
        case fdatasync
        case memfdCreate
        case dupCloexec
        case addSeals
        /// `fstatfs(2)`, asked whether a file lives on hugetlbfs.
        case fstatfs
        /// `fcntl(F_GETFL)`, asked for a descriptor's access mode.
        case getFileFlags

        internal var shim: CMmapShim_Call {
            switch self {
            case .mmap: CMmapShim_Call_mmap
            case .mmapInPlace: CMmapShim_Call_mmapInPlace
            case .munmap: CMmapShim_Call_munmap
            case .mprotect: CMmapShim_Call_mprotect
            case .msync: CMmapShim_Call_msync
            case .madvise: CMmapShim_Call_madvise
            case .mlock: CMmapShim_Call_mlock
            case .munlock: CMmapShim_Call_munlock
            case .mremap: CMmapShim_Call_mremap
            case .mincore: CMmapShim_Call_mincore
            case .open: CMmapShim_Call_open
            case .close: CMmapShim_Call_close
            case .fstat: CMmapShim_Call_fstat
            case .ftruncate: CMmapShim_Call_ftruncate
            case .fallocate: CMmapShim_Call_fallocate
            case .fdatasync: CMmapShim_Call_fdatasync
            case .memfdCreate: CMmapShim_Call_memfd_create
            case .dupCloexec: CMmapShim_Call_dupCloexec
            case .addSeals: CMmapShim_Call_addSeals
            case .fstatfs: CMmapShim_Call_fstatfs
            case .getFileFlags: CMmapShim_Call_getFileFlags
            }
        }

        /// The system call's name, e.g. `"mmap(MAP_FIXED)"`.
        public var description: String {
            switch self {
            case .mmap: "mmap"
            case .mmapInPlace: "mmap(MAP_FIXED)"
            case .munmap: "munmap"
            case .mprotect: "mprotect"
            case .msync: "msync"
            case .madvise: "madvise"
            case .mlock: "mlock"
            case .munlock: "munlock"
            case .mremap: "mremap"
            case .mincore: "mincore"
            case .open: "open"
            case .close: "close"
            case .fstat: "fstat"
            case .ftruncate: "ftruncate"
            case .fallocate: "fallocate"
            case .fdatasync: "fdatasync"
            case .memfdCreate: "memfd_create"
            case .dupCloexec: "fcntl(F_DUPFD_CLOEXEC)"
            case .addSeals: "fcntl(F_ADD_SEALS)"
            case .fstatfs: "fstatfs"
            case .getFileFlags: "fcntl(F_GETFL)"
            }
        }
    }

    /// Whether this build has the seam (debug builds).
    public static var isAvailable: Bool { CMmapShim_faultInjectionAvailable() != 0 }

    /// Lets the next `skip` calls of `call` on this thread through, then makes the `times` calls
    /// after them fail with `errno`.
    ///
    /// A populate (`madvise` with `MADV_POPULATE_*`) that fails with `EFAULT` or `EHWPOISON` is
    /// tried again, on the whole range and then by bisection: with `times: 1` the retry succeeds
    /// and so does the call. Fail more calls to see the error.
    ///
    /// - Parameter removingPages: For ``Call/mmapInPlace`` only: unmap the target pages before
    ///   failing, as the kernel does when a file's mmap handler refuses after `MAP_FIXED` removed
    ///   the old pages.
    public static func inject(_ call: Call, skip: Int = 0, times: Int = 1, errno: CInt, removingPages: Bool = false) {
        CMmapShim_injectFailure(call.shim, Int64(skip), Int64(times), errno, removingPages ? 1 : 0)
    }

    /// Disarms every failure of this thread and sets its call counts to zero.
    public static func reset() {
        CMmapShim_resetFaultInjection()
    }

    /// How many times this thread reached `call` since the last ``reset()``.
    public static func callCount(_ call: Call) -> Int {
        Int(CMmapShim_callCount(call.shim))
    }

    /// The calls `body` makes on this thread, by system call (zero counts left out).
    public static func calls<E: Error>(of body: () throws(E) -> Void) throws(E) -> [Call: Int] {
        reset()
        defer { reset() }
        try body()
        var result: [Call: Int] = [:]
        for call in Call.allCases where callCount(call) > 0 {
            result[call] = callCount(call)
        }
        return result
    }
}

extension _MmapFaultInjection {
    /// A closure that the next ``MmapByteQueue`` call to publish a position runs, once, between
    /// reading the position and publishing the new one, on the calling thread. Tests use it to
    /// interleave two threads of the same side deterministically. Debug builds only (like
    /// ``inject(_:skip:times:errno:removingPages:)``, it does nothing in release builds).
    public static func beforeNextQueuePublish(_ body: @escaping @Sendable () -> Void) {
        #if DEBUG
        queuePublishHook.withLock { $0 = body }
        queuePublishHookArmed.store(true, ordering: .releasing)
        #endif
    }
}

#if DEBUG
extension _MmapFaultInjection {
    /// Runs and disarms the hook set by ``beforeNextQueuePublish(_:)``, if any.
    internal static func runQueuePublishHook() {
        // Every publish of every queue comes here in debug builds: without a hook armed it takes
        // no lock (a lock would order the producer and the consumer, hiding what TSan and the
        // tests should see, and TSan does not model this toolchain's Mutex).
        guard queuePublishHookArmed.load(ordering: .acquiring) else { return }
        queuePublishHookArmed.store(false, ordering: .relaxed)
        let hook = queuePublishHook.withLock { hook in
            defer { hook = nil }
            return hook
        }
        hook?()
    }

    private static let queuePublishHook = Mutex<(@Sendable () -> Void)?>(nil)
    private static let queuePublishHookArmed = Atomic<Bool>(false)
}
#endif
