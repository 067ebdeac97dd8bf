internal import Glibc

// MARK: - Page management

extension Mmap {
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
    ///
    /// - Parameter range: Byte offsets within the mapping; `nil` for all of it.
    /// - Throws: ``MmapError/Code/fault`` (`EFAULT`) when part of the range is not backed by the
    ///   file, or `EHWPOISON`; ``MmapError/Code/unsupported`` before Linux 5.14;
    ///   ``MmapError/Code/outOfBounds`` for a range outside the mapping.
    ///
    /// The corresponding C function is `madvise(2)`.
    public func populate(range: Range<Int>? = nil) throws(MmapError) {
        try region.advise(.populateRead, range: region.resolve(range))
    }

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
    /// - Throws: ``MmapError/Code/outOfBounds`` for a bad range, or the kernel's error.
    /// - Complexity: O(pages in the range).
    ///
    /// The corresponding C function is `mincore(2)`.
    public func residency(range: Range<Int>? = nil) throws(MmapError) -> MmapResidency {
        try region.residency(range: region.resolve(range))
    }

    /// Resizes the mapping to `count` bytes (`mremap(2)`, Linux-only).
    ///
    /// `mutating`, so it cannot run while a span of the mapping is alive: the compiler ensures
    /// that no borrowed bytes move or vanish. Growing a file mapping past the end of the file
    /// is allowed; grow the file first (touching pages past its end raises `SIGBUS`).
    ///
    /// - Parameters:
    ///   - count: The new count in bytes, greater than 0.
    ///   - mayMove: Whether the kernel may move the mapping to a new address
    ///     (`MREMAP_MAYMOVE`). Without it, a grow blocked by a neighbouring mapping fails.
    /// - Throws: ``MmapError/Code/invalidArgument`` for a count of 0 or less, or an empty
    ///   mapping; ``MmapError/Code/outOfMemory`` when the mapping cannot grow in place and
    ///   `mayMove` is false; ``MmapError/Code/unsupported`` when advice or locking on part of
    ///   the mapping split it in the kernel (apply the same advice to all of it, or unlock, and
    ///   retry). On failure the mapping is unchanged.
    ///
    /// The corresponding C function is `mremap(2)`.
    public mutating func remap(count: Int, mayMove: Bool) throws(MmapError) {
        try region.remap(count: count, mayMove: mayMove)
    }

    /// Writes dirty pages back (`msync(MS_SYNC)`), then `fdatasync(2)`s `fileDescriptor`,
    /// which also makes a changed file size durable (after growth).
    ///
    /// - Parameter fileDescriptor: The descriptor of the mapped file.
    /// - Throws: The kernel's error from either call.
    public func flush(dataSyncing fileDescriptor: CInt) throws(MmapError) {
        try region.flush(dataSyncing: fileDescriptor)
    }
}
