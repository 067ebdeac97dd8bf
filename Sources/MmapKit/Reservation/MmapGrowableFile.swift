internal import Glibc

/// A shared, writable mapping of a file that grows in place inside an address-space
/// reservation: its address never changes, so pointers into it stay valid as the file grows.
///
/// The database use case: an append-only segment or a B-tree file mapped once with room to grow.
/// ``grow(to:allocate:)`` extends the file (with `fallocate(2)` by default, so writes cannot meet
/// a full disk as `SIGBUS`) and maps the new tail pages right after the old ones, inside the
/// reservation made by ``init(fileDescriptor:capacity:)``. Growth is bounded by the capacity,
/// never by a neighbouring mapping, and never moves the mapping (unlike
/// ``MmapHandle/grow(to:fileDescriptor:allocate:mayMove:)``, which uses `mremap(2)`).
///
/// The value keeps its own duplicate of the descriptor (closed when it ends) to extend the file.
@frozen
@safe
public struct MmapGrowableFile: ~Copyable, Sendable {
    // Invariant: `reservation` has [0, pages(count)) committed as a shared mapping of `fd` from
    // offset 0; the file is at least `count` bytes long; `fd` is owned and open for writing.
    @usableFromInline internal var reservation: MmapReservation
    @usableFromInline internal let fd: CInt
    @usableFromInline internal var mappedCount: Int

    /// Maps the file behind `fileDescriptor` (its whole current size) at the start of a new
    /// reservation of `capacity` bytes.
    ///
    /// - Parameters:
    ///   - fileDescriptor: A descriptor open for reading and writing; MmapKit keeps a duplicate,
    ///     so the caller may close it.
    ///   - capacity: The largest size the file can grow to through this value.
    /// - Throws: ``MmapError/Code/invalidArgument`` when the file is larger than `capacity`;
    ///   ``MmapError/Code/permissionDenied`` when the descriptor is not open for reading and
    ///   writing (even for an empty file, whose mapping would otherwise fail only at the first
    ///   ``grow(to:allocate:)``); ``MmapError/Code/notMappable`` for anything but a regular file;
    ///   ``MmapError/Code/unsupported`` for a file on hugetlbfs; the kernel's errors (`EBADF`,
    ///   `ENOMEM`). Nothing stays mapped or open on failure.
    public init(fileDescriptor: CInt, capacity: Int) throws(MmapError) {
        let (size, kind) = try fileStatus(fileDescriptor)
        guard kind == .regular else {
            throw MmapError(.map, .notMappable, errno: ENODEV, "descriptor \(fileDescriptor) is not a regular file")
        }
        guard size <= capacity else {
            throw .invalid(.map, "the \(size)-byte file is larger than the capacity \(capacity)")
        }
        guard try isOpenForReadingAndWriting(fileDescriptor) else {
            throw MmapError(
                .map,
                .permissionDenied,
                errno: EACCES,
                "descriptor \(fileDescriptor) is not open for reading and writing (O_RDWR), which a growable file "
                    + "needs to extend the file and map it shared"
            )
        }
        if let hugePage = try hugeTLBPageSize(fileDescriptor) {
            throw MmapError(
                .map,
                .unsupported,
                "descriptor \(fileDescriptor) is on hugetlbfs, which maps files in whole \(hugePage >> 10) KiB huge "
                    + "pages; a growable file grows page by page: map it with MutableMmap instead"
            )
        }
        var reservation = try MmapReservation(count: capacity)
        let end = Self.pageEnd(Int(size))
        if end > 0 {
            try reservation.commit(0..<end, fileDescriptor: fileDescriptor, fileOffset: 0)
        }
        let duplicate = try duplicateDescriptor(fileDescriptor)
        self.reservation = reservation
        self.fd = duplicate
        self.mappedCount = Int(size)
    }

    deinit {
        closeDescriptor(fd)
    }

    /// The number of bytes of the file that are mapped (its size, as far as this value knows).
    public var count: Int { mappedCount }

    /// The largest count ``grow(to:allocate:)`` can reach.
    public var capacity: Int { reservation.count }

    /// The address of the first byte; it never changes.
    public var baseAddress: UInt { reservation.baseAddress }

    /// The mapped bytes, borrowed from this value.
    public var bytes: RawSpan {
        @_lifetime(borrow self)
        borrowing get {
            let span = unsafe RawSpan(_unsafeStart: reservation.base, byteCount: mappedCount)
            return unsafe _overrideLifetime(span, borrowing: self)
        }
    }

    /// Calls `body` with the mapped bytes, borrowed for the call.
    ///
    /// The same bytes as ``bytes``, and as safe: the compiler rejects returning the span or
    /// storing it outside the closure (see "What the compiler cannot check" in the
    /// documentation for the one hole Swift 6.3.1 leaves). Prefer it
    /// on a local binding in hot code: with Swift 6.3.1, taking ``bytes`` of a local binding
    /// costs a heap allocation (a box for the binding; see "Known compiler limitations" in the
    /// README), and this call costs none.
    ///
    /// <!-- snippet-context: let fd: CInt = 3 -->
    /// ```swift
    /// let log = try MmapGrowableFile(fileDescriptor: fd, capacity: 1 << 30)
    /// let header = log.withBytes { $0.byteCount >= 8 ? $0.load(as: UInt64.self, byteOrder: .littleEndian) : 0 }
    /// ```
    ///
    /// - Parameter body: A closure that reads the bytes.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    public func withBytes<R: ~Copyable, E: Error>(_ body: (RawSpan) throws(E) -> R) throws(E) -> R {
        try body(bytes)
    }

    /// The mapped bytes for reading and writing, with exclusive access.
    public var mutableBytes: MutableRawSpan {
        @_lifetime(&self)
        mutating get {
            let span = unsafe MutableRawSpan(_unsafeStart: reservation.base, byteCount: mappedCount)
            return unsafe _overrideLifetime(span, mutating: &self)
        }
    }

    /// Calls `body` with the mapped bytes for reading and writing, with exclusive access for the call.
    ///
    /// The same bytes as ``mutableBytes``, and as safe: the compiler rejects returning the span
    /// or storing it outside the closure. Swift 6.3.1 lets one move slip through, an assignment
    /// to a captured variable (`outer = span; span = MutableRawSpan()`); this call checks that
    /// it got its own span back and traps otherwise, before the mapping can be unmapped.
    ///
    /// - Parameter body: A closure that reads and writes the bytes.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    public mutating func withMutableBytes<R: ~Copyable, E: Error>(
        _ body: (inout MutableRawSpan) throws(E) -> R
    ) throws(E) -> R {
        let start = unsafe reservation.base
        let lent = mappedCount
        var span = mutableBytes
        defer { unsafe checkLentSpanReturned(span, start: start, count: lent) }
        return try body(&span)
    }

    /// Extends the file to `count` bytes and maps the new pages in place.
    ///
    /// - Parameters:
    ///   - count: The new size: not smaller than the current one, not larger than ``capacity``.
    ///   - allocate: `true` (the default) to reserve disk blocks with `fallocate(2)`, `false` for
    ///     a sparse extension with `ftruncate(2)`.
    /// - Throws: ``MmapError/Code/invalidArgument`` for a smaller count or one past the capacity;
    ///   the kernel's error (`ENOSPC`). On failure the mapping is unchanged (the file may have
    ///   been extended).
    public mutating func grow(to count: Int, allocate: Bool = true) throws(MmapError) {
        guard count >= mappedCount else {
            throw .invalid(.grow, "count \(count) is smaller than the current \(mappedCount)")
        }
        guard count <= reservation.count else {
            throw .invalid(.grow, "count \(count) is past the capacity \(reservation.count); reserve more")
        }
        try extendFile(fd, to: Int64(count), allocate: allocate)
        let oldEnd = Self.pageEnd(mappedCount)
        let newEnd = Self.pageEnd(count)
        if newEnd > oldEnd {
            try reservation.commit(oldEnd..<newEnd, fileDescriptor: fd, fileOffset: Int64(oldEnd))
        }
        mappedCount = count
    }

    /// Writes the dirty pages back (`msync(MS_SYNC)`), then `fdatasync(2)`s the file, which also
    /// makes its new size durable.
    ///
    /// - Throws: The kernel's error.
    public func flush() throws(MmapError) {
        guard mappedCount > 0 else { return }
        try reservation.region.flush(range: 0..<mappedCount, synchronous: true)
        try dataSync(fd)
    }

    /// Calls `body` with a pointer to the mapped bytes (``count`` of them), valid only during
    /// the call.
    ///
    /// The pointer never changes (see ``baseAddress``), but reading past what the file holds
    /// now (another process may have truncated it) raises `SIGBUS`: use the guarded reads
    /// (``MmapBytes/guardedLoad(fromByteOffset:as:)`` and the rest) where that can happen.
    ///
    /// - Parameter body: A closure that reads the bytes through the pointer.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    public func withUnsafeBytes<R: ~Copyable, E: Error>(
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try unsafe body(UnsafeRawBufferPointer(start: reservation.base, count: mappedCount))
    }

    /// Calls `body` with a mutable pointer to the mapped bytes, valid only during the call.
    ///
    /// As ``withUnsafeBytes(_:)``: writes past what the file holds now raise `SIGBUS`.
    ///
    /// - Parameter body: A closure that reads and writes the bytes through the pointer.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    public mutating func withUnsafeMutableBytes<R: ~Copyable, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try unsafe body(UnsafeMutableRawBufferPointer(start: reservation.base, count: mappedCount))
    }

    /// `count` (at most the reservation's length) rounded up to the page.
    private static func pageEnd(_ count: Int) -> Int {
        // Cannot overflow: the reservation's length is a multiple of the page that fits in an
        // `Int`, and every count here is at most that length.
        guard let end = PageAlignment.alignUp(count, to: systemPageSize) else {
            fatalError("MmapKit: count \(count) exceeds the reservation")
        }
        return end
    }
}
