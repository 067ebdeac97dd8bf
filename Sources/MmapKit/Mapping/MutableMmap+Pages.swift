internal import Glibc

// MARK: - Page management

extension MutableMmap {
    /// Gives the kernel advice about how the pages covering `range` will be used.
    ///
    /// See ``Mmap/advise(_:range:)``.
    ///
    /// - Parameters:
    ///   - advice: Advice that never destroys contents.
    ///   - range: Byte offsets within the mapping; `nil` (the default) for all of it.
    /// - Throws: ``MmapError/Code/outOfBounds`` or ``MmapError/Code/unsupported``.
    public func advise(_ advice: MmapAdvice, range: Range<Int>? = nil) throws(MmapError) {
        try region.advise(advice, range: region.resolve(range))
    }

    /// Gives advice that may discard or replace the contents of the whole pages inside `range`.
    ///
    /// `mutating`, so the compiler forbids it while a span of the mapping is alive. Only whole
    /// pages inside the range are affected; a page partly outside it is left alone, except at
    /// the ends of the mapping. A range that holds no whole page changes nothing.
    ///
    /// - Parameters:
    ///   - advice: ``MmapDestructiveAdvice/dontNeed``, ``MmapDestructiveAdvice/free``, ...
    ///   - range: Byte offsets within the mapping; `nil` for all of it.
    /// - Throws: ``MmapError/Code/outOfBounds`` for a bad range; ``MmapError/Code/unsupported``
    ///   when the kernel refuses the advice for this mapping (`MADV_FREE` on a file mapping);
    ///   ``MmapError/Code/invalidArgument`` when `dontNeed`, `free` or `remove` would meet locked
    ///   pages (checked first: nothing changes);
    ///   ``MmapError/Code/fault`` when ``MmapDestructiveAdvice/populateWrite`` meets a page the
    ///   file no longer backs.
    ///
    /// The corresponding C function is `madvise(2)`.
    public mutating func advise(_ advice: MmapDestructiveAdvice, range: Range<Int>? = nil) throws(MmapError) {
        try region.adviseDestructively(advice, range: region.resolve(range))
    }

    /// Prefaults the pages covering `range` for reading (`MADV_POPULATE_READ`), reporting
    /// failures as errors. See ``Mmap/populate(range:)``; to prefault for writing use
    /// `advise(.populateWrite, range:)`.
    ///
    /// - Parameter range: Byte offsets within the mapping; `nil` for all of it.
    /// - Throws: ``MmapError/Code/fault``, ``MmapError/Code/unsupported`` or
    ///   ``MmapError/Code/outOfBounds``.
    public func populate(range: Range<Int>? = nil) throws(MmapError) {
        try region.advise(.populateRead, range: region.resolve(range))
    }

    /// Locks the pages covering `range` into memory (`mlock(2)`). See ``Mmap/lock(range:)``.
    ///
    /// - Parameter range: Byte offsets within the mapping; `nil` for all of it.
    /// - Throws: ``MmapError/Code/lockLimit`` naming `RLIMIT_MEMLOCK`, ``MmapError/Code/fault``
    ///   for pages past the end of the file, or ``MmapError/Code/outOfBounds``.
    public func lock(range: Range<Int>? = nil) throws(MmapError) {
        try region.lock(range: region.resolve(range))
    }

    /// Unlocks the pages covering `range` (`munlock(2)`).
    ///
    /// - Parameter range: Byte offsets within the mapping; `nil` for all of it.
    /// - Throws: ``MmapError/Code/outOfBounds``, or the kernel's error.
    public func unlock(range: Range<Int>? = nil) throws(MmapError) {
        try region.unlock(range: region.resolve(range))
    }

    /// Reports which pages covering `range` are resident (`mincore(2)`).
    /// See ``Mmap/residency(range:)``.
    ///
    /// - Parameter range: Byte offsets within the mapping; `nil` for all of it.
    /// - Returns: One byte per page of the range, and counts derived from it.
    /// - Throws: ``MmapError/Code/outOfBounds``, or the kernel's error.
    public func residency(range: Range<Int>? = nil) throws(MmapError) -> MmapResidency {
        try region.residency(range: region.resolve(range))
    }

    /// Resizes the mapping to `count` bytes (`mremap(2)`). See ``Mmap/remap(count:mayMove:)``.
    ///
    /// - Parameters:
    ///   - count: The new count in bytes, greater than 0.
    ///   - mayMove: Whether the mapping may move to a new address.
    /// - Throws: ``MmapError/Code/invalidArgument`` or ``MmapError/Code/outOfMemory``;
    ///   ``MmapError/Code/unsupported`` when advice or locking on part of the mapping split it,
    ///   or when shared anonymous memory would grow (its new pages would have no backing). On
    ///   failure the mapping is unchanged.
    public mutating func remap(count: Int, mayMove: Bool) throws(MmapError) {
        try region.remap(count: count, mayMove: mayMove)
    }

    /// Grows the mapped file and the mapping together: the pattern of an append-only segment.
    ///
    /// Extends the file behind `fileDescriptor` so that it covers `count` bytes from the
    /// mapping's offset, with `fallocate(2)` (blocks are reserved now, so writes through the
    /// mapping cannot meet a full disk as `SIGBUS`) or `ftruncate(2)` (a sparse extension), then
    /// resizes the mapping (`mremap(2)`). An empty mapping is mapped afresh. Follow with
    /// ``flush(dataSyncing:)`` to make the new size durable.
    ///
    /// - Parameters:
    ///   - count: The new count, not smaller than the current one.
    ///   - fileDescriptor: A read-write descriptor of the mapped file.
    ///   - allocate: `true` (the default) for `fallocate`, `false` for `ftruncate`.
    ///   - mayMove: Whether the mapping may move to a new address; `true` by default.
    /// - Throws: ``MmapError/Code/invalidArgument`` for a smaller count, an overflowing end, or
    ///   anonymous memory (whose writes could never reach the file);
    ///   ``MmapError/Code/noSpace`` when the file system is full; the kernel's error from
    ///   `fstat`, `fallocate`, `ftruncate` or `mremap`. When
    ///   the file was extended but the remap failed, the file stays extended and the mapping
    ///   is unchanged.
    public mutating func grow(
        to count: Int,
        fileDescriptor: CInt,
        allocate: Bool = true,
        mayMove: Bool = true
    ) throws(MmapError) {
        try region.grow(
            to: count,
            fileDescriptor: fileDescriptor,
            allocate: allocate,
            mayMove: mayMove,
            protection: PROT_READ | PROT_WRITE
        )
    }

    /// Writes dirty pages back (`msync(MS_SYNC)`), then `fdatasync(2)`s `fileDescriptor`,
    /// which also makes a changed file size durable (after ``grow(to:fileDescriptor:allocate:mayMove:)``).
    ///
    /// - Parameter fileDescriptor: The descriptor of the mapped file.
    /// - Throws: The kernel's error from either call.
    public func flush(dataSyncing fileDescriptor: CInt) throws(MmapError) {
        try region.flush(dataSyncing: fileDescriptor)
    }
}
