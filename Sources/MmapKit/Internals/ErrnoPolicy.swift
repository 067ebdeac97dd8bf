internal import CMmapShim
internal import Glibc

// The one place that decides what an errno means: a programmer error of MmapKit itself
// (trap: an invariant is broken and continuing could corrupt memory), or an environmental
// error (throw an `MmapError` the caller can act on).

extension MmapError {
    /// An error for an errno returned by the shim, or a trap when the errno can only mean that
    /// MmapKit passed the kernel a pointer or range it does not own.
    ///
    /// - Parameters:
    ///   - operation: The failing operation.
    ///   - errno: The errno the shim captured (never 0).
    ///   - context: What was being done, e.g. "cannot map 4096 bytes of descriptor 3".
    internal static func system(_ operation: Operation, errno: CInt, _ context: String) -> MmapError {
        precondition(errno != 0, "MmapKit: \(operation) reported failure without an errno")
        // EFAULT: the kernel could not read or write an address MmapKit handed it (except from
        // MADV_POPULATE_*, where it means a page is no longer backed: an environmental error).
        // EINVAL from munmap/mprotect/msync: MmapKit passes only page-aligned ranges of its own mappings.
        if (errno == EFAULT && operation != .advise)
            || (errno == EINVAL && (operation == .unmap || operation == .protect || operation == .flush))
        {
            preconditionFailure("MmapKit: \(operation) failed with \(errnoName(errno)) on a range MmapKit owns")
        }
        let code: Code
        switch (operation, errno) {
        case (.advise, EFAULT), (.advise, EHWPOISON):
            // MADV_POPULATE_*: a page the file no longer backs, or a hardware memory error.
            code = .fault
        case (_, ENODEV), (.map, EISDIR):
            code = .notMappable
        case (_, EOPNOTSUPP), (.advise, EINVAL):
            code = .unsupported
        case (.lock, ENOMEM), (.lock, EAGAIN), (.lock, EPERM):
            code = .lockLimit
        case (_, EACCES), (_, EPERM), (_, EROFS), (_, ETXTBSY):
            code = .permissionDenied
        case (_, ENOMEM):
            code = .outOfMemory
        default:
            code = .system
        }
        var message = "\(context): \(errnoDescription(errno)) (\(errnoName(errno)))"
        if code == .lockLimit {
            message += "; RLIMIT_MEMLOCK is \(memlockLimitDescription()) (see `ulimit -l`)"
        }
        return MmapError(operation, code, errno: errno, message)
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
