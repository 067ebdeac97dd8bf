/// A read-only window on a mapping shared by reference counting: split it into disjoint pieces
/// and send them to other threads; the mapping is unmapped when the last view ends.
///
/// Made by ``MmapHandle/share()`` of an ``Mmap``. It offers no way to write. The successor of
/// memmap's `MmapViewSync`, without its aliasing `clone`. Its operations are documented on
/// ``MmapViewHandle``.
public typealias MmapView = MmapViewHandle<MmapReadOnly>

/// A writable window on a mapping shared by reference counting: split it into disjoint pieces,
/// write each from its own thread, flush each on its own; the mapping is unmapped when the last
/// view ends.
///
/// Made by ``MmapHandle/share()`` of a ``MutableMmap``. The successor of memmap's
/// `MmapViewSync`. Its operations are documented on ``MmapViewHandle``.
public typealias MutableMmapView = MmapViewHandle<MmapReadWrite>

/// A window on a mapping shared by reference counting: ``MmapView`` (read-only) or
/// ``MutableMmapView`` (read-write), by its ``MmapAccess`` parameter.
///
/// Views never overlap (no API creates an aliasing copy), so writes through different views
/// cannot race; that is what makes the type `Sendable`. ``split(at:)`` and ``restrict(to:)``
/// allocate nothing; the mapping is unmapped when the last view derived from it ends, on
/// whichever thread that happens.
@safe
@frozen
public struct MmapViewHandle<Access: MmapAccess>: ~Copyable, Sendable {
    // Invariant: see ViewStorage; the pages are written through this type only when `Access`
    // is `MmapReadWrite`.
    @usableFromInline internal var storage: ViewStorage

    internal init(storage: ViewStorage) {
        self.storage = storage
    }
}

extension MmapHandle {
    /// Turns this mapping into a view that can be split and shared across threads.
    ///
    /// Costs one heap allocation (the shared owner); splitting costs none.
    ///
    /// - Returns: A view of the whole mapping, of the same kind (read-only or read-write). The
    ///   mapping is unmapped when the last view derived from it ends.
    public consuming func share() -> MmapViewHandle<Access> {
        let region = self.region
        discard self
        return MmapViewHandle(storage: ViewStorage(owning: region))
    }
}

// MARK: - Bytes

extension MmapViewHandle {
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
}

extension MmapViewHandle where Access == MmapReadWrite {
    /// The view's bytes for reading and writing, with exclusive access to this view.
    @inlinable
    public var mutableBytes: MutableRawSpan {
        @_lifetime(&self)
        mutating get {
            let span = unsafe MutableRawSpan(_unsafeBytes: storage.buffer)
            return unsafe _overrideLifetime(span, mutating: &self)
        }
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

extension MmapViewHandle: MmapBytes {}

extension MmapViewHandle: MutableMmapBytes where Access == MmapReadWrite {}

// MARK: - Splitting

extension MmapViewHandle {
    /// Splits the view: this view keeps `[0, offset)` and the returned view covers
    /// `[offset, count)`. No allocation.
    ///
    /// - Parameter offset: A position in `0...count`; `count` gives an empty second view.
    /// - Returns: The view of the bytes from `offset` on.
    /// - Throws: ``MmapError/Code/outOfBounds`` when `offset` is negative or past `count`.
    public mutating func split(at offset: Int) throws(MmapError) -> MmapViewHandle<Access> {
        MmapViewHandle(storage: try storage.split(at: offset))
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

extension MmapViewHandle {
    /// Writes the dirty pages covering `range` of this view back to the file and waits
    /// (`msync(MS_SYNC)`). The start is aligned down to the page; a neighbouring view's bytes
    /// in a shared page may be written back too, and are never modified.
    ///
    /// - Parameter range: Byte offsets within the view; `nil` (the default) for all of it.
    /// - Throws: ``MmapError/Code/outOfBounds`` when `range` is not inside `0..<count`; the
    ///   kernel's error otherwise.
    ///
    /// The corresponding C function is `msync(2)`.
    public func flush(range: Range<Int>? = nil) throws(MmapError) {
        try storage.mapping.region.flush(range: storage.regionRange(range, .flush), synchronous: true)
    }

    /// Schedules writeback of the pages covering `range` of this view (`msync(MS_ASYNC)`, a
    /// hint on Linux; see ``MmapHandle/flushAsync(range:)``).
    ///
    /// - Parameter range: Byte offsets within the view; `nil` (the default) for all of it.
    /// - Throws: ``MmapError/Code/outOfBounds`` for a bad range, or the kernel's error.
    ///
    /// The corresponding C function is `msync(2)`.
    public func flushAsync(range: Range<Int>? = nil) throws(MmapError) {
        try storage.mapping.region.flush(range: storage.regionRange(range, .flush), synchronous: false)
    }

    /// Gives the kernel advice about the pages covering `range` of this view (see
    /// ``MmapAdvice`` for how far each advice reaches).
    ///
    /// - Parameters:
    ///   - advice: Advice that never destroys contents.
    ///   - range: Byte offsets within the view; `nil` (the default) for all of it.
    /// - Throws: ``MmapError/Code/outOfBounds`` or ``MmapError/Code/unsupported``.
    ///
    /// The corresponding C function is `madvise(2)`.
    public func advise(_ advice: MmapAdvice, range: Range<Int>? = nil) throws(MmapError) {
        try storage.mapping.region.advise(advice, range: storage.regionRange(range, .advise), origin: storage.offset)
    }
}

extension MmapViewHandle where Access == MmapReadWrite {
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
    ///
    /// The corresponding C function is `madvise(2)`.
    public mutating func advise(_ advice: MmapDestructiveAdvice, range: Range<Int>? = nil) throws(MmapError) {
        try storage.mapping.region.adviseDestructively(
            advice,
            range: storage.regionRange(range, .advise),
            origin: storage.offset
        )
    }
}
