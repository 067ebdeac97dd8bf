// MARK: - Advice

extension MmapHandle {
    /// Gives the kernel advice about how the pages covering `range` will be used.
    ///
    /// A hint is applied to the whole pages covering the range (aligned outward); advice that
    /// changes inheritance (``MmapAdvice/dontFork``, ...) only to the whole pages inside it (see
    /// ``MmapAdvice``). Ranges are checked on integers before any pointer arithmetic.
    ///
    /// - Parameters:
    ///   - advice: Advice that never destroys contents.
    ///   - range: Byte offsets within the mapping; `nil` (the default) for all of it.
    /// - Throws: ``MmapError/Code/outOfBounds`` for a range outside `0..<count`;
    ///   ``MmapError/Code/unsupported`` when this kernel does not know the advice or does not
    ///   accept it for this kind of mapping (never a silent no-op).
    ///
    /// The corresponding C function is `madvise(2)`.
    public func advise(_ advice: MmapAdvice, range: Range<Int>? = nil) throws(MmapError) {
        try region.advise(advice, range: region.resolve(range))
    }

    /// Prefaults the pages covering `range` for reading (`MADV_POPULATE_READ`, Linux 5.14),
    /// reporting failures instead of raising `SIGBUS` later.
    ///
    /// Unlike ``MmapOptions/populate``, a page the file no longer backs (the file was truncated)
    /// is an error here. The check is for this moment only: a later truncation still loses pages.
    /// To prefault a writable mapping for writing, use `advise(.populateWrite, range:)`.
    ///
    /// - Parameter range: Byte offsets within the mapping; `nil` for all of it.
    /// - Throws: ``MmapError/Code/fault`` (`EFAULT`, with ``MmapError/faultOffset``) when part of
    ///   the range is not backed by the file, or `EHWPOISON`; ``MmapError/Code/unsupported``
    ///   before Linux 5.14; ``MmapError/Code/outOfBounds`` for a range outside the mapping.
    ///
    /// The corresponding C function is `madvise(2)`.
    public func populate(range: Range<Int>? = nil) throws(MmapError) {
        try region.advise(.populateRead, range: region.resolve(range))
    }
}

extension MmapHandle where Access == MmapReadWrite {
    /// Gives advice that may discard or replace the contents of the whole pages inside `range`.
    ///
    /// `mutating`, so the compiler forbids it while a span of the mapping is alive. Only whole
    /// pages inside the range are affected; a page partly outside it is left alone, except at
    /// the ends of the mapping when the rest of the page is nobody's data (anonymous or private
    /// memory; never a shared file's bytes). A range that holds no whole page changes nothing.
    ///
    /// - Parameters:
    ///   - advice: ``MmapDestructiveAdvice/dontNeed``, ``MmapDestructiveAdvice/free``, ...
    ///   - range: Byte offsets within the mapping; `nil` for all of it.
    /// - Throws: ``MmapError/Code/outOfBounds`` for a bad range; ``MmapError/Code/unsupported``
    ///   when the kernel refuses the advice for this mapping (`MADV_FREE` on a file mapping);
    ///   ``MmapError/Code/invalidArgument`` when `dontNeed`, `free` or `remove` would meet locked
    ///   pages (checked first: nothing changes); ``MmapError/Code/fault`` when
    ///   ``MmapDestructiveAdvice/populateWrite`` meets a page the file no longer backs.
    ///
    /// The corresponding C function is `madvise(2)`.
    public mutating func advise(_ advice: MmapDestructiveAdvice, range: Range<Int>? = nil) throws(MmapError) {
        try region.adviseDestructively(advice, range: region.resolve(range))
    }
}

// MARK: - Locking and residency

extension MmapHandle {
    /// Locks the pages covering `range` into memory.
    ///
    /// - Parameter range: Byte offsets within the mapping; `nil` for all of it.
    /// - Throws: ``MmapError/Code/lockLimit`` when the lock would exceed `RLIMIT_MEMLOCK` (the
    ///   message gives the limit); ``MmapError/Code/fault`` when pages of the range are past the
    ///   end of the file (the range is then left unlocked); ``MmapError/Code/outOfBounds`` for a
    ///   bad range.
    ///
    /// The corresponding C function is `mlock(2)`.
    public func lock(range: Range<Int>? = nil) throws(MmapError) {
        try region.lock(range: region.resolve(range))
    }

    /// Unlocks the pages covering `range`.
    ///
    /// - Parameter range: Byte offsets within the mapping; `nil` for all of it.
    /// - Throws: ``MmapError/Code/outOfBounds`` for a bad range, or the kernel's error.
    ///
    /// The corresponding C function is `munlock(2)`.
    public func unlock(range: Range<Int>? = nil) throws(MmapError) {
        try region.unlock(range: region.resolve(range))
    }

    /// Reports which pages covering `range` are resident in memory.
    ///
    /// - Parameter range: Byte offsets within the mapping; `nil` for all of it.
    /// - Returns: One byte per page of the range, and counts derived from it.
    /// - Throws: ``MmapError/Code/outOfBounds`` for a bad range;
    ///   ``MmapError/Code/invalidArgument`` for a range of more than 2²⁶ pages; the kernel's
    ///   error otherwise.
    /// - Complexity: O(pages in the range).
    ///
    /// The corresponding C function is `mincore(2)`.
    public func residency(range: Range<Int>? = nil) throws(MmapError) -> MmapResidency {
        try region.residency(range: region.resolve(range))
    }
}
