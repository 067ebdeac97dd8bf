/// The one error type of MmapKit: which operation failed, why, and the errno.
///
/// Every fallible API `throws(MmapError)`. When MmapKit rejects an argument itself (a negative
/// offset, a range outside the mapping), ``errno`` is 0 and no system call was made. When the
/// kernel refuses, ``errno`` holds the value captured right after the failing call.
///
/// ```swift
/// do {
///     let map = try Mmap(path: "/var/db/segment", offset: 8192)
/// } catch {
///     print(error)  // "mmap: offset 8192 is past the end of the 4096-byte file"
/// }
/// ```
public struct MmapError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The operation that failed.
    public var operation: Operation
    /// The kind of failure; switch over it with a `default` case, since new codes may be added.
    public var code: Code
    /// The errno reported by the kernel, or 0 when MmapKit rejected an argument itself.
    public var errno: CInt
    /// A sentence a person can act on, without the operation prefix.
    public var message: String
    /// For ``Code/fault``: the byte offset (from the start of the mapping or view) of the
    /// access that faulted; `nil` otherwise.
    public var faultOffset: Int?

    internal init(_ operation: Operation, _ code: Code, errno: CInt = 0, _ message: String) {
        self.operation = operation
        self.code = code
        self.errno = errno
        self.message = message
    }

    /// The operation, the message and, for kernel errors, the errno's name and description:
    /// `"mmap: cannot map 4096 bytes of descriptor 7: Permission denied (EACCES)"`.
    public var description: String {
        "\(operation): \(message)"
    }
}

// MARK: - Operation

extension MmapError {
    /// The operation that failed, named after its system call where there is one.
    ///
    /// A struct rather than an enum so that new operations do not break existing `switch`es.
    public struct Operation: Hashable, Sendable, CustomStringConvertible {
        internal let rawValue: UInt8

        internal init(_ rawValue: UInt8) { self.rawValue = rawValue }

        /// Mapping memory (`mmap(2)`), including argument validation before the call.
        public static let map = Operation(0)
        /// Unmapping memory (`munmap(2)`).
        public static let unmap = Operation(1)
        /// Changing protection (`mprotect(2)`): `makeMutable()`, `makeReadOnly()`, `makeExecutable()`.
        public static let protect = Operation(2)
        /// Flushing to the file (`msync(2)`, and `fdatasync(2)` where asked for).
        public static let flush = Operation(3)
        /// Giving advice (`madvise(2)`), including prefaulting with `MADV_POPULATE_*`.
        public static let advise = Operation(4)
        /// Locking pages in memory (`mlock(2)`).
        public static let lock = Operation(5)
        /// Unlocking pages (`munlock(2)`).
        public static let unlock = Operation(6)
        /// Resizing a mapping (`mremap(2)`).
        public static let remap = Operation(7)
        /// Asking which pages are resident (`mincore(2)`).
        public static let residency = Operation(8)
        /// Opening a file by path (`open(2)`).
        public static let open = Operation(9)
        /// Reading a file's size and type (`fstat(2)`).
        public static let stat = Operation(10)
        /// Growing a file (`ftruncate(2)` or `fallocate(2)`).
        public static let grow = Operation(11)
        /// A guarded read or write through a mapping.
        public static let access = Operation(12)
        /// Creating or sealing a memory file (`memfd_create(2)`, `fcntl(2)`).
        public static let memfd = Operation(13)
        /// Committing pages inside a reservation (`mmap(2)` with `MAP_FIXED`).
        public static let commit = Operation(14)
        /// Decommitting pages of a reservation.
        public static let decommit = Operation(15)
        /// Writing a file's data to its device (`fdatasync(2)`), after the pages were flushed.
        public static let dataSync = Operation(16)
        /// Duplicating a descriptor that MmapKit keeps (`fcntl(F_DUPFD_CLOEXEC)`).
        public static let duplicate = Operation(17)
        /// Splitting a view in two (`split(at:)`); no system call is made.
        public static let split = Operation(18)
        /// Narrowing a view to a subrange (`restrict(to:)`); no system call is made.
        public static let restrict = Operation(19)

        private static let names = [
            "mmap", "munmap", "mprotect", "msync", "madvise", "mlock", "munlock", "mremap", "mincore", "open",
            "fstat", "grow", "access", "memfd", "commit", "decommit", "fdatasync", "dup",
            "split", "restrict",
        ]

        /// The system call's name, e.g. `"mmap"`.
        public var description: String { Self.names[Int(rawValue)] }
    }
}

// MARK: - Code

extension MmapError {
    /// The kind of failure.
    ///
    /// A struct rather than an enum so that new codes do not break existing `switch`es.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        internal let rawValue: UInt8

        internal init(_ rawValue: UInt8) { self.rawValue = rawValue }

        /// An argument is malformed: negative, overflowing, misaligned, or not a page multiple.
        /// No system call was made; ``MmapError/errno`` is 0.
        public static let invalidArgument = Code(0)
        /// An offset or range lies outside the file or the mapping. No system call was made.
        public static let outOfBounds = Code(1)
        /// The descriptor does not refer to something that can be mapped this way (a directory,
        /// a FIFO, a socket, a device without mmap support).
        public static let notMappable = Code(2)
        /// The kernel does not support the request (an advice value, `MAP_SYNC` on a non-DAX file,
        /// explicit huge pages with none reserved).
        public static let unsupported = Code(3)
        /// Locking would exceed `RLIMIT_MEMLOCK`, or the process may not lock memory.
        public static let lockLimit = Code(4)
        /// Access was refused: the descriptor's mode does not allow the requested protection.
        public static let permissionDenied = Code(5)
        /// A guarded access touched a page that the file no longer backs (a caught `SIGBUS`), or
        /// a prefault met a page that access would fault on: past the end of the file, a page
        /// its file system cannot provide (a full tmpfs, an exhausted hugetlbfs pool), or a
        /// guard page. ``MmapError/faultOffset`` says where.
        public static let fault = Code(6)
        /// Any other error reported by the kernel; see ``MmapError/errno``.
        public static let system = Code(7)
        /// The kernel could not find memory or address space for the request.
        public static let outOfMemory = Code(8)
        /// The file system is full, or the user's quota is exhausted (`ENOSPC`, `EDQUOT`): free
        /// space and retry. What was mapped or written before stays intact.
        public static let noSpace = Code(9)

        private static let names = [
            "invalidArgument", "outOfBounds", "notMappable", "unsupported", "lockLimit", "permissionDenied",
            "fault", "system", "outOfMemory", "noSpace",
        ]

        /// The code's name, e.g. `"outOfBounds"`.
        public var description: String { Self.names[Int(rawValue)] }
    }
}
