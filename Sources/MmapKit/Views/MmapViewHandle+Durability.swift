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
    ///   ``MmapDestructiveAdvice/populateWrite`` meets a page it cannot fault in (as
    ///   ``MmapHandle/populateForWriting(range:threads:)``); ``MmapError/Code/outOfMemory`` when
    ///   memory runs out.
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
