/// A memory mapping owned by one value and unmapped exactly once when it ends: ``Mmap``
/// (read-only) or ``MutableMmap`` (read-write), by its ``MmapAccess`` parameter.
///
/// `MmapHandle` is noncopyable: one value owns the mapping, `deinit` unmaps it, and the
/// consuming methods (``makeExecutable()``, ``share()``, and ``makeMutable()`` or
/// ``makeReadOnly()``) hand it on; ``unmap()`` ends it and reports errors. Every operation has
/// one implementation, shared by both kinds; those that write exist only on ``MutableMmap``.
///
/// The counterpart of memmap2's `Mmap` and `MmapMut`.
@safe
@frozen
public struct MmapHandle<Access: MmapAccess>: ~Copyable, Sendable {
    // Invariant: `region` is a live mapping (or empty) owned by this value alone; its pages are
    // readable, and writable when `Access` is `MmapReadWrite` (or, for a read-only handle, when
    // it came from `makeReadOnly()` of a writable mapping: writes through it are impossible,
    // since it offers none).
    @usableFromInline internal var region: Region

    @usableFromInline
    internal init(region: Region) {
        self.region = region
    }

    deinit {
        region.unmapDiscardingError()
    }
}

// MARK: - Constructors

extension MmapHandle {
    /// Maps part or all of an open file.
    ///
    /// The mapping stays valid after `fileDescriptor` is closed. The offset may be any byte
    /// offset: MmapKit maps from the page below it and keeps the bytes before it out of sight.
    ///
    /// - Parameters:
    ///   - fileDescriptor: An open descriptor: readable; for a shared ``MutableMmap``, open for
    ///     reading and writing.
    ///   - offset: The first byte of the file to map; 0 by default. Offsets past 4 GiB work.
    ///   - count: The number of bytes to map, or `nil` (the default) for everything from
    ///     `offset` to the end of the file. An explicit count may reach past the end of the file,
    ///     as the kernel allows (the pattern of a file that grows into its mapping); touching a
    ///     page entirely past the end raises `SIGBUS`, unless read through a guarded API.
    ///   - sharing: ``MmapSharing/shared`` (the default: writes reach the file) or
    ///     ``MmapSharing/private`` (copy-on-write: writes never reach the file; a private
    ///     ``Mmap`` can later be made writable with ``makeMutable()`` without touching it).
    ///   - options: Prefaulting, huge pages, locking, advice and DAX sync.
    /// - Throws: ``MmapError`` with code ``MmapError/Code/invalidArgument`` for a negative offset
    ///   or count or an overflowing `offset + count`; ``MmapError/Code/outOfBounds`` for an
    ///   offset past the end of the file when `count` is nil; ``MmapError/Code/notMappable`` for
    ///   directories, FIFOs and sockets; ``MmapError/Code/permissionDenied`` (`EACCES`) for a
    ///   shared ``MutableMmap`` of a descriptor not open for writing; the kernel's error
    ///   otherwise (`EBADF`, ...). An empty file, or `offset` equal to its size, maps as an empty
    ///   mapping.
    ///
    /// The corresponding C function is `mmap(2)`, with `PROT_READ` (and `PROT_WRITE` for a
    /// ``MutableMmap``).
    @inlinable  // specialized in the caller: the map path pays nothing for being generic
    public init(
        fileDescriptor: CInt,
        offset: Int64 = 0,
        count: Int? = nil,
        sharing: MmapSharing = .shared,
        options: MmapOptions = MmapOptions()
    ) throws(MmapError) {
        self.init(
            region: try Region.map(
                fileDescriptor: fileDescriptor,
                offset: offset,
                count: count,
                writable: Access._isWritable,
                shared: sharing == .shared,
                options: options
            )
        )
    }

    /// Opens the file at `path`, maps it, and closes it.
    ///
    /// The file is opened with `O_CLOEXEC`: read-only, except for a shared ``MutableMmap``, which
    /// opens it read-write.
    ///
    /// - Parameters:
    ///   - path: The file to map.
    ///   - offset: The first byte of the file to map; 0 by default.
    ///   - count: The number of bytes to map, or `nil` for everything from `offset` on.
    ///   - sharing: ``MmapSharing/shared`` (the default) or ``MmapSharing/private``.
    ///   - options: Prefaulting, huge pages, locking, advice and DAX sync.
    /// - Throws: ``MmapError`` with operation ``MmapError/Operation/open`` when the file cannot
    ///   be opened (``MmapError/Code/invalidArgument`` for a path holding a NUL byte), otherwise
    ///   as ``init(fileDescriptor:offset:count:sharing:options:)``.
    ///
    /// The corresponding C functions are `open(2)`, `mmap(2)` and `close(2)`.
    @inlinable  // specialized in the caller: the map path pays nothing for being generic
    public init(
        path: String,
        offset: Int64 = 0,
        count: Int? = nil,
        sharing: MmapSharing = .shared,
        options: MmapOptions = MmapOptions()
    ) throws(MmapError) {
        self.init(
            region: try Region.map(
                path: path,
                offset: offset,
                count: count,
                writable: Access._isWritable,
                shared: sharing == .shared,
                options: options
            )
        )
    }
}

extension MmapHandle where Access == MmapReadWrite {
    /// Maps `count` bytes of zero-filled anonymous memory.
    ///
    /// - Parameters:
    ///   - count: The number of bytes; 0 gives an empty mapping without a system call.
    ///   - sharing: ``MmapSharing/private`` (the default) or ``MmapSharing/shared``: shared
    ///     anonymous memory is the same memory in `fork(2)` children, for IPC.
    ///   - options: Prefaulting, no-reserve, huge pages, stack, locking and advice.
    /// - Throws: ``MmapError/Code/invalidArgument`` for a negative or too large count;
    ///   the kernel's error otherwise (`ENOMEM`; explicit huge pages with none reserved).
    ///
    /// The corresponding C function is `mmap(2)` with `MAP_ANONYMOUS`.
    public init(
        anonymous count: Int,
        sharing: MmapSharing = .private,
        options: MmapOptions = MmapOptions()
    ) throws(MmapError) {
        self.init(region: try Region.mapAnonymous(count: count, shared: sharing == .shared, options: options))
    }
}
