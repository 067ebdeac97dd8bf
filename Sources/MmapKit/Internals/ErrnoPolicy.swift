internal import CMmapShim
internal import Glibc

// The one place that decides what an errno means: a programmer error of MmapKit itself
// (trap: an invariant is broken and continuing could corrupt memory), or an environmental
// error (throw an `MmapError` the caller can act on).

extension MmapError {
    /// The errnos that can only mean MmapKit broke its own invariant: each row names the call, the
    /// errno and why MmapKit cannot have caused it legitimately. Everything else throws.
    ///
    /// - `munmap`/`mprotect`/`msync` `EINVAL`: MmapKit passes only whole, page-aligned ranges of
    ///   mappings it made, with valid flags.
    /// - `mincore` `EFAULT`: the vector is a buffer MmapKit allocated for the range.
    /// - `open` `EFAULT`: the path pointer comes from a Swift string MmapKit holds.
    ///
    /// Deliberately not here: `EFAULT` from `madvise` (`MADV_POPULATE_*` met a page the file no
    /// longer backs) and from `mremap` (advice or locking on part of a mapping split it in the
    /// kernel); `ENOMEM` from `munmap` (unmapping would split a mapping at `vm.max_map_count`).
    internal static let invariantErrnos: [(operation: Operation, errno: CInt, reason: String)] = [
        (.unmap, EINVAL, "MmapKit unmaps only whole, page-aligned mappings it made"),
        (.protect, EINVAL, "MmapKit changes the protection of whole, page-aligned mappings it made"),
        (.flush, EINVAL, "MmapKit flushes page-aligned ranges of its own mappings with valid flags"),
        (.residency, EFAULT, "the residency vector is a buffer MmapKit allocated for the range"),
        (.open, EFAULT, "the path is a NUL-terminated copy of a Swift string MmapKit holds"),
    ]

    /// The code for an errno returned by the shim, for errnos that are not invariant violations.
    ///
    /// The table of the errno policy, row by row (the first matching row wins).
    internal static func code(for operation: Operation, errno: CInt) -> Code {
        switch (operation, errno) {
        case (.advise, EFAULT), (_, EHWPOISON):
            // MADV_POPULATE_*: a page the file no longer backs, or a hardware memory error.
            return .fault
        case (.remap, EFAULT):
            // The range spans several kernel mappings: part of it was advised or locked differently.
            return .unsupported
        case (_, ENODEV), (.map, EISDIR), (.open, ENXIO):
            // ENXIO: open(2) of a Unix socket or a device without a driver.
            return .notMappable
        case (_, EOPNOTSUPP), (.advise, EINVAL):
            return .unsupported
        case (.lock, ENOMEM), (.lock, EAGAIN), (.lock, EPERM):
            return .lockLimit
        case (_, ENOSPC), (_, EDQUOT):
            return .noSpace
        case (_, EACCES), (_, EPERM), (_, EROFS), (_, ETXTBSY):
            return .permissionDenied
        case (_, ENOMEM):
            return .outOfMemory
        default:
            return .system
        }
    }

    /// An error for an errno returned by the shim, or a trap when the errno can only mean that
    /// MmapKit passed the kernel a pointer or range it does not own (``invariantErrnos``).
    ///
    /// - Parameters:
    ///   - operation: The failing operation.
    ///   - errno: The errno the shim captured (never 0).
    ///   - context: What was being done, e.g. "cannot map 4096 bytes of descriptor 3".
    internal static func system(_ operation: Operation, errno: CInt, _ context: String) -> MmapError {
        precondition(errno != 0, "MmapKit: \(operation) reported failure without an errno")
        if let row = invariantErrnos.first(where: { $0.operation == operation && $0.errno == errno }) {
            fatalError(
                "MmapKit: \(operation) failed with \(errnoName(errno)) on a range MmapKit owns (\(row.reason))"
            )
        }
        let code = code(for: operation, errno: errno)
        var message = "\(context): \(errnoDescription(errno)) (\(errnoName(errno)))"
        if code == .lockLimit {
            message += "; RLIMIT_MEMLOCK is \(memlockLimitDescription()) (see `ulimit -l`)"
        }
        return MmapError(operation, code, errno: errno, message)
    }

    /// Throws the error for `error`, a result of the syscall chokepoint, unless it is 0: the one
    /// way a failed call becomes an ``MmapError`` (through ``system(_:errno:_:)``, so the
    /// errno policy applies). Call sites that do more than throw (repair, retry, a clearer
    /// message for one errno) test the result themselves.
    ///
    /// - Parameters:
    ///   - error: What the shim returned: 0, or the errno captured right after the call.
    ///   - operation: The failing operation.
    ///   - context: What was being done; built only on failure.
    @inline(__always)
    internal static func check(
        _ error: CInt,
        _ operation: Operation,
        _ context: @autoclosure () -> String
    ) throws(MmapError) {
        guard error == 0 else { throw .system(operation, errno: error, context()) }
    }

    /// An argument MmapKit rejected itself; no system call was made.
    internal static func invalid(_ operation: Operation, _ message: String) -> MmapError {
        MmapError(operation, .invalidArgument, message)
    }

    /// An offset or range outside the file or mapping; no system call was made.
    internal static func outOfBounds(_ operation: Operation, _ message: String) -> MmapError {
        MmapError(operation, .outOfBounds, message)
    }
}

/// `"EBADF"`, or `"errno 4242"` for a value the C library does not name.
internal func errnoName(_ errno: CInt) -> String {
    guard let name = unsafe CMmapShim_errnoName(errno) else { return "errno \(errno)" }
    return unsafe String(cString: name)
}

/// `"Bad file descriptor"`, or `"Unknown error 4242"`.
internal func errnoDescription(_ errno: CInt) -> String {
    guard let text = unsafe CMmapShim_errnoDescription(errno) else { return "Unknown error \(errno)" }
    return unsafe String(cString: text)
}

/// `"8388608 bytes"` or `"unlimited"`.
internal func memlockLimitDescription() -> String {
    var bytes: UInt64 = 0
    guard unsafe CMmapShim_memlockLimit(&bytes) == 0 else { return "unknown" }
    return bytes == .max ? "unlimited" : "\(bytes) bytes"
}
