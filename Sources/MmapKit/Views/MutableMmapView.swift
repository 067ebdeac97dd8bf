/// A writable window on a mapping shared by reference counting: split it into disjoint
/// pieces, write each from its own thread, flush each on its own; the mapping is unmapped when
/// the last view ends.
///
/// Made by ``MutableMmap/share()``. Views never overlap (no API creates an aliasing copy), so
/// writes through different views cannot race; that is what makes the type `Sendable`.
/// The successor of memmap's `MmapViewSync`.
@safe
@frozen
public struct MutableMmapView: ~Copyable, Sendable {
    // Invariant: see ViewStorage; the pages are readable and writable.
    @usableFromInline internal var storage: ViewStorage

    internal init(storage: ViewStorage) {
        self.storage = storage
    }
}

extension MutableMmap {
    /// Turns this mapping into a writable view that can be split and shared across threads.
    ///
    /// Costs one heap allocation (the shared owner); splitting costs none.
    ///
    /// - Returns: A view of the whole mapping. The mapping is unmapped when the last view
    ///   derived from it ends.
    public consuming func share() -> MutableMmapView {
        let region = self.region
        discard self
        return MutableMmapView(storage: ViewStorage(owning: region))
    }
}

// MARK: - Bytes

extension MutableMmapView {
    /// The number of bytes in the view.
    @inlinable
    public var count: Int { storage.count }

    /// Whether the view is empty.
    @inlinable
    public var isEmpty: Bool { storage.count == 0 }

    /// The view's bytes, borrowed from the view.
    @inlinable
    public var bytes: RawSpan {
        @_lifetime(borrow self)
        borrowing get {
            let span = unsafe RawSpan(_unsafeBytes: UnsafeRawBufferPointer(storage.buffer))
            return unsafe _overrideLifetime(span, borrowing: self)
        }
    }

    /// The view's bytes for reading and writing, with exclusive access to this view.
    @inlinable
    public var mutableBytes: MutableRawSpan {
        @_lifetime(&self)
        mutating get {
            let span = unsafe MutableRawSpan(_unsafeBytes: storage.buffer)
            return unsafe _overrideLifetime(span, mutating: &self)
        }
    }

    /// Calls `body` with a pointer to the view's bytes, valid only during the call.
    ///
    /// - Parameter body: A closure that reads the bytes; it must not let the pointer escape.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    @inlinable
    public func withUnsafeBytes<R: ~Copyable, E: Error>(
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try unsafe body(UnsafeRawBufferPointer(storage.buffer))
    }

    /// Calls `body` with a mutable pointer to the view's bytes, valid only during the call.
    ///
    /// - Parameter body: A closure that reads and writes the bytes; it must not let the
    ///   pointer escape.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    @inlinable
    public mutating func withUnsafeMutableBytes<R: ~Copyable, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try unsafe body(storage.buffer)
    }
}

// MARK: - Splitting

extension MutableMmapView {
    /// Splits the view: this view keeps `[0, offset)` and the returned view covers
    /// `[offset, count)`. No allocation.
    ///
    /// - Parameter offset: A position in `0...count`; `count` gives an empty second view.
    /// - Returns: The view of the bytes from `offset` on.
    /// - Throws: ``MmapError/Code/outOfBounds`` when `offset` is negative or past `count`.
    public mutating func split(at offset: Int) throws(MmapError) -> MutableMmapView {
        MutableMmapView(storage: try storage.split(at: offset))
    }

    /// Narrows this view to `range`, a subrange of itself.
    ///
    /// - Parameter range: Byte offsets within the view.
    /// - Throws: ``MmapError/Code/outOfBounds`` when `range` is not inside `0..<count`.
    public mutating func restrict(to range: Range<Int>) throws(MmapError) {
        try storage.restrict(to: range)
    }
}

// MARK: - Durability and advice

extension MutableMmapView {
    /// Writes the dirty pages covering this view back to the file and waits
    /// (`msync(MS_SYNC)`). The start is aligned down to the page; a neighbouring view's bytes
    /// in a shared page may be written back too, and are never modified.
    ///
    /// - Throws: The kernel's error.
    public func flush() throws(MmapError) {
        try storage.mapping.region.flush(range: storage.range, synchronous: true)
    }

    /// Schedules writeback of the pages covering this view (`msync(MS_ASYNC)`, a hint on Linux).
    ///
    /// - Throws: The kernel's error.
    public func flushAsync() throws(MmapError) {
        try storage.mapping.region.flush(range: storage.range, synchronous: false)
    }

    /// Gives the kernel advice about the pages covering `range` of this view.
    ///
    /// - Parameters:
    ///   - advice: Advice that never destroys contents.
    ///   - range: Byte offsets within the view; `nil` (the default) for all of it.
    /// - Throws: ``MmapError/Code/outOfBounds`` or ``MmapError/Code/unsupported``.
    ///
    /// The corresponding C function is `madvise(2)`.
    public func advise(_ advice: MmapAdvice, range: Range<Int>? = nil) throws(MmapError) {
        try storage.mapping.region.advise(
            advice,
            range: storage.regionRange(range, .advise),
            origin: storage.offset
        )
    }

    /// Gives advice that may discard the contents of the whole pages inside `range` of this
    /// view; a page shared with a neighbouring view is never touched.
    ///
    /// - Parameters:
    ///   - advice: Destructive advice such as ``MmapDestructiveAdvice/dontNeed``.
    ///   - range: Byte offsets within the view; `nil` for all of it.
    /// - Throws: ``MmapError/Code/outOfBounds`` or ``MmapError/Code/unsupported``;
    ///   ``MmapError/Code/invalidArgument`` when pages of the range are locked (nothing changes);
    ///   ``MmapError/Code/fault`` (with ``MmapError/faultOffset`` in the view) when
    ///   ``MmapDestructiveAdvice/populateWrite`` meets a page the file no longer backs.
    public mutating func advise(_ advice: MmapDestructiveAdvice, range: Range<Int>? = nil) throws(MmapError) {
        try storage.mapping.region.adviseDestructively(
            advice,
            range: storage.regionRange(range, .advise),
            origin: storage.offset
        )
    }
}
