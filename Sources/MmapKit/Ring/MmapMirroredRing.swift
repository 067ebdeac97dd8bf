/// A ring of `capacity` bytes mapped twice, back to back, so that any window of up to
/// `capacity` bytes starting anywhere in the ring is contiguous: readers and writers never
/// handle wrap-around.
///
/// Built from a `memfd` of `capacity` bytes sealed against shrinking and growing
/// (`F_SEAL_SHRINK | F_SEAL_GROW`, so no holder of the descriptor can cause a `SIGBUS`), mapped
/// at `base` and at `base + capacity` inside one reservation of twice the capacity, so no other
/// mapping can slip between the halves. A byte written at offset `i` is visible at `i + capacity`.
///
/// One mapping, unmapped exactly once when the value ends. Linux 3.17 or later (`memfd_create`).
@frozen
@safe
public struct MmapMirroredRing: ~Copyable, Sendable {
    // Invariant: `region` is a reservation of 2 * count bytes whose two halves map the same
    // sealed memfd pages; count is a positive multiple of the page size.
    @usableFromInline internal var region: Region

    /// Creates a ring of `capacity` bytes.
    ///
    /// - Parameter capacity: A positive multiple of the page size.
    /// - Throws: ``MmapError/Code/invalidArgument`` when `capacity` is not a positive multiple of
    ///   the page size, or when twice it overflows `Int` (the message says which); the kernel's
    ///   errors from `memfd_create`, `ftruncate`, `fcntl` or `mmap` (``MmapError/Code/outOfMemory``
    ///   for a capacity the address space cannot hold twice). Nothing stays mapped or open on
    ///   failure.
    public init(capacity: Int) throws(MmapError) {
        let page = systemPageSize
        guard capacity > 0, PageAlignment.isAligned(capacity, to: page) else {
            throw .invalid(.map, "ring capacity \(capacity) is not a positive multiple of the \(page)-byte page")
        }
        guard capacity <= Int.max / 2 else {
            throw .invalid(
                .map,
                "ring capacity \(capacity) is too large: the ring is mapped twice, and twice it does not fit in an Int"
            )
        }
        self.region = try Region.mirroredRing(capacity: capacity)
    }

    deinit {
        region.unmapDiscardingError()
    }

    /// The ring's size in bytes.
    public var capacity: Int { region.count }

    /// The ring's size in bytes: ``capacity`` (for ``MmapBytes``).
    public var count: Int { region.count }

    /// A contiguous window of `count` bytes starting at ring offset `offset`, across the end of
    /// the ring if need be.
    ///
    /// - Parameters:
    ///   - offset: A ring offset in `0..<capacity`.
    ///   - count: The window's size, at most `capacity`.
    /// - Returns: A span that borrows the ring.
    /// - Throws: ``MmapError/Code/outOfBounds`` for an offset outside the ring or a count
    ///   larger than the capacity.
    @_lifetime(borrow self)
    public func bytes(from offset: Int, count: Int) throws(MmapError) -> RawSpan {
        try check(offset, count)
        let span = unsafe RawSpan(_unsafeStart: address(offset), byteCount: count)
        return unsafe _overrideLifetime(span, borrowing: self)
    }

    /// A contiguous writable window of `count` bytes starting at ring offset `offset`.
    ///
    /// - Parameters:
    ///   - offset: A ring offset in `0..<capacity`.
    ///   - count: The window's size, at most `capacity`.
    /// - Returns: A mutable span with exclusive access to the ring.
    /// - Throws: ``MmapError/Code/outOfBounds`` as ``bytes(from:count:)``.
    @_lifetime(&self)
    public mutating func mutableBytes(from offset: Int, count: Int) throws(MmapError) -> MutableRawSpan {
        try check(offset, count)
        let span = unsafe MutableRawSpan(_unsafeStart: address(offset), byteCount: count)
        return unsafe _overrideLifetime(span, mutating: &self)
    }

    private func check(_ offset: Int, _ count: Int) throws(MmapError) {
        guard offset >= 0, offset < region.count, count >= 0, count <= region.count else {
            throw .outOfBounds(
                .access,
                "a window of \(count) bytes at \(offset) does not fit a \(region.count)-byte ring"
            )
        }
    }

    /// Calls `body` with a pointer to the whole mirrored mapping, valid only during the call:
    /// `2 * capacity` bytes, where byte `i + capacity` is byte `i`, so that any window of up to
    /// ``capacity`` bytes that starts in the ring is contiguous.
    ///
    /// - Parameter body: A closure that reads the bytes through the pointer.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    public func withUnsafeBytes<R: ~Copyable, E: Error>(
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try unsafe body(UnsafeRawBufferPointer(start: address(0), count: region.mappedLength))
    }

    /// Calls `body` with a mutable pointer to the whole mirrored mapping (`2 * capacity` bytes;
    /// see ``withUnsafeBytes(_:)``), valid only during the call.
    ///
    /// - Parameter body: A closure that reads and writes the bytes through the pointer.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    public mutating func withUnsafeMutableBytes<R: ~Copyable, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try unsafe body(UnsafeMutableRawBufferPointer(start: address(0), count: region.mappedLength))
    }

    /// Not API: a guarded access is a window as ``bytes(from:count:)`` takes: it starts in the
    /// ring and is at most ``capacity`` bytes long, across the end of the ring if need be.
    ///
    /// - Throws: ``MmapError/Code/outOfBounds`` for an offset outside the ring or a length
    ///   larger than the capacity.
    public func _checkGuardedAccess(offset: Int, length: Int) throws(MmapError) {
        try check(offset, length)
    }

    /// The address of ring offset `offset`.
    ///
    /// - Precondition: `0 <= offset` and `offset + length <= 2 * capacity` for the `length`
    ///   bytes the caller touches, only while the ring is alive (and borrowed mutably to write).
    @unsafe
    @usableFromInline
    internal func address(_ offset: Int) -> UnsafeMutableRawPointer {
        unsafe region.base.unsafelyUnwrapped + offset
    }
}
