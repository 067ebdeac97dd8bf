internal import CMmapShim
internal import Glibc

/// A writable memory mapping of a file or of anonymous memory, unmapped exactly once.
///
/// `MutableMmap` is noncopyable: one value owns the mapping, `deinit` unmaps it, and the
/// consuming methods (``unmap()``, ``makeReadOnly()``, ``makeExecutable()``, `share()`) end it
/// explicitly. Write through ``mutableBytes`` (a `MutableRawSpan` with exclusive access, so
/// nothing else can read, unmap or resize the mapping meanwhile) or
/// ``withUnsafeMutableBytes(_:)``; make writes durable with ``flush()``.
///
/// ```swift
/// var map = try MutableMmap(path: "/var/db/segment")
/// var bytes = map.mutableBytes
/// bytes.storeBytes(of: 42 as UInt64, toByteOffset: 0, as: UInt64.self)
/// try map.flush()
/// ```
///
/// The counterpart of memmap2's `MmapMut`.
@safe
@frozen
public struct MutableMmap: ~Copyable, Sendable {
    // Invariant: `region` is a live mapping (or empty) owned by this value alone, readable and
    // writable.
    @usableFromInline internal var region: Region

    internal init(region: Region) {
        self.region = region
    }

    deinit {
        region.unmapDiscardingError()
    }
}

// MARK: - Constructors

extension MutableMmap {
    /// Maps part or all of an open file for reading and writing.
    ///
    /// The mapping stays valid after `fileDescriptor` is closed.
    ///
    /// - Parameters:
    ///   - fileDescriptor: An open descriptor: read-write for a shared mapping, readable for a
    ///     private one.
    ///   - offset: The first byte of the file to map; any byte offset, 0 by default.
    ///   - count: The number of bytes to map, or `nil` (the default) for everything from
    ///     `offset` to the end of the file. An explicit count may reach past the end of the file
    ///     (grow the file before touching those pages, or they raise `SIGBUS`).
    ///   - sharing: ``MmapSharing/shared`` (the default: writes reach the file) or
    ///     ``MmapSharing/private`` (copy-on-write: writes never reach the file).
    ///   - options: Prefaulting, huge pages, locking, advice and DAX sync.
    /// - Throws: As ``Mmap/init(fileDescriptor:offset:count:sharing:options:)``; a shared
    ///   mapping of a descriptor that is not open for writing fails with `EACCES`
    ///   (``MmapError/Code/permissionDenied``).
    ///
    /// The corresponding C function is `mmap(2)` with `PROT_READ | PROT_WRITE`.
    public init(
        fileDescriptor: CInt,
        offset: Int64 = 0,
        count: Int? = nil,
        sharing: MmapSharing = .shared,
        options: MmapOptions = MmapOptions()
    ) throws(MmapError) {
        let region = try Region.map(
            fileDescriptor: fileDescriptor,
            offset: offset,
            count: count,
            access: .readWrite,
            shared: sharing == .shared,
            options: options
        )
        self.init(region: region)
    }

    /// Opens the file at `path` (read-write for a shared mapping, read-only for a private one;
    /// always with `O_CLOEXEC`), maps it, and closes it.
    ///
    /// - Parameters:
    ///   - path: The file to map.
    ///   - offset: The first byte of the file to map; 0 by default.
    ///   - count: The number of bytes to map, or `nil` for everything from `offset` on.
    ///   - sharing: ``MmapSharing/shared`` (the default) or ``MmapSharing/private``.
    ///   - options: Prefaulting, huge pages, locking, advice and DAX sync.
    /// - Throws: ``MmapError`` with operation ``MmapError/Operation/open`` when the file cannot
    ///   be opened, otherwise as ``init(fileDescriptor:offset:count:sharing:options:)``.
    public init(
        path: String,
        offset: Int64 = 0,
        count: Int? = nil,
        sharing: MmapSharing = .shared,
        options: MmapOptions = MmapOptions()
    ) throws(MmapError) {
        let region = try withOpenFile(path, sharing == .shared ? O_RDWR : O_RDONLY) { fd throws(MmapError) in
            try Region.map(
                fileDescriptor: fd,
                offset: offset,
                count: count,
                access: .readWrite,
                shared: sharing == .shared,
                options: options
            )
        }
        self.init(region: region)
    }

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
