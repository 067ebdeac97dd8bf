internal import CMmapShim
internal import Glibc

/// A read-only memory mapping of a file, unmapped exactly once when it ends.
///
/// `Mmap` is noncopyable: one value owns the mapping, `deinit` unmaps it, and the consuming
/// methods (``unmap()``, ``makeMutable()``, ``makeExecutable()``, `share()`) end it explicitly.
/// Read it through ``bytes`` (a `RawSpan` that borrows the mapping, so the compiler refuses to
/// unmap or resize it while the span lives) or ``withUnsafeBytes(_:)``.
///
/// ```swift
/// let map = try Mmap(path: "/var/db/segment")
/// let header = map.bytes.unsafeLoad(fromByteOffset: 0, as: UInt64.self)
/// ```
///
/// The counterpart of memmap2's `Mmap`.
@safe
@frozen
public struct Mmap: ~Copyable, Sendable {
    // Invariant: `region` is a live mapping (or empty) owned by this value alone; its pages are
    // readable, and writable only if the value came from `makeReadOnly()` of a writable mapping.
    @usableFromInline internal var region: Region

    internal init(region: Region) {
        self.region = region
    }

    deinit {
        region.unmapDiscardingError()
    }
}

// MARK: - Constructors

extension Mmap {
    /// Maps part or all of an open file for reading.
    ///
    /// The mapping stays valid after `fileDescriptor` is closed. The offset may be any byte
    /// offset: MmapKit maps from the page below it and keeps the bytes before it out of sight.
    ///
    /// - Parameters:
    ///   - fileDescriptor: An open descriptor, readable.
    ///   - offset: The first byte of the file to map; 0 by default. Offsets past 4 GiB work.
    ///   - count: The number of bytes to map, or `nil` (the default) for everything from
    ///     `offset` to the end of the file. An explicit count may reach past the end of the file,
    ///     as the kernel allows (the pattern of a file that grows into its mapping); touching a
    ///     page entirely past the end raises `SIGBUS`, unless read through a guarded API.
    ///   - sharing: ``MmapSharing/shared`` (the default) or ``MmapSharing/private``; a private
    ///     mapping can later be made writable with ``makeMutable()`` without touching the file.
    ///   - options: Prefaulting, huge pages, locking and advice.
    /// - Throws: ``MmapError`` with code ``MmapError/Code/invalidArgument`` for a negative offset
    ///   or count or an overflowing `offset + count`; ``MmapError/Code/outOfBounds`` for an
    ///   offset past the end of the file when `count` is nil; ``MmapError/Code/notMappable`` for
    ///   directories, FIFOs and sockets; the kernel's error otherwise (`EBADF`, `EACCES`, ...).
    ///   An empty file, or `offset` equal to its size, maps as an empty mapping.
    ///
    /// The corresponding C function is `mmap(2)` with `PROT_READ`.
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
            access: .readOnly,
            shared: sharing == .shared,
            options: options
        )
        self.init(region: region)
    }

    /// Opens the file at `path` read-only (with `O_CLOEXEC`), maps it, and closes it.
    ///
    /// - Parameters:
    ///   - path: The file to map.
    ///   - offset: The first byte of the file to map; 0 by default.
    ///   - count: The number of bytes to map, or `nil` for everything from `offset` on.
    ///   - sharing: ``MmapSharing/shared`` (the default) or ``MmapSharing/private``.
    ///   - options: Prefaulting, huge pages, locking and advice.
    /// - Throws: ``MmapError`` with operation ``MmapError/Operation/open`` when the file cannot
    ///   be opened, otherwise as ``init(fileDescriptor:offset:count:sharing:options:)``.
    public init(
        path: String,
        offset: Int64 = 0,
        count: Int? = nil,
        sharing: MmapSharing = .shared,
        options: MmapOptions = MmapOptions()
    ) throws(MmapError) {
        let region = try withOpenFile(path, O_RDONLY) { fd throws(MmapError) in
            try Region.map(
                fileDescriptor: fd,
                offset: offset,
                count: count,
                access: .readOnly,
                shared: sharing == .shared,
                options: options
            )
        }
        self.init(region: region)
    }
}
