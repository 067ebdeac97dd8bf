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
    /// Unlike ``MmapOptions/populate``, a page that access would fault with `SIGBUS` is an error
    /// here. The check is for this moment only: a later truncation still loses pages. To prefault
    /// a writable mapping for writing, use ``populateForWriting(range:threads:)``.
    ///
    /// Memory that cannot be found is not always an error: under a memory cgroup's limit the
    /// kernel may reclaim, or kill a process (the OOM killer, its choice, maybe this one), as for
    /// any page fault.
    ///
    /// - Parameter range: Byte offsets within the mapping; `nil` for all of it.
    /// - Throws: ``MmapError/Code/fault`` (`EFAULT`, with ``MmapError/faultOffset``) at the first
    ///   page that cannot be faulted in: in a file mapping, the file is shorter than the mapping
    ///   (truncated) or its file system cannot provide the page (a full tmpfs, an exhausted
    ///   hugetlbfs pool; MmapKit cannot tell these apart, and the message names them); in any
    ///   mapping, a guard page (`MADV_GUARD_INSTALL`), or `EHWPOISON`. The first failing page is
    ///   looked for again after the failure; if by then the whole range populates (a file
    ///   truncated and grown back), the call succeeds. ``MmapError/Code/outOfMemory`` when
    ///   anonymous memory cannot be provided (`ENOMEM`, or explicit huge pages made with
    ///   ``MmapOptions/noReserve`` when the pool is empty);
    ///   ``MmapError/Code/unsupported`` before Linux 5.14; ``MmapError/Code/outOfBounds`` for a
    ///   range outside the mapping.
    ///
    /// The corresponding C function is `madvise(2)`.
    public func populate(range: Range<Int>? = nil) throws(MmapError) {
        try region.advise(.populateRead, range: region.resolve(range))
    }

    /// Prefaults the pages covering `range` for reading on up to `threads` threads at once
    /// (`MADV_POPULATE_READ`, Linux 5.14), reporting failures instead of raising `SIGBUS` later.
    ///
    /// The range is split into chunks of whole pages, one per thread; the calling thread does
    /// the first chunk and waits for the others. A chunk is never smaller than 4 MiB, so a small
    /// range uses fewer threads (below 8 MiB, only the caller's): starting a thread costs more
    /// than the faults it would take over. A thread that cannot be started leaves its chunk to
    /// the caller. `threads: 1` is ``populate(range:)``.
    ///
    /// Choosing `threads`: prefaulting is bound by page faults (page-table updates and, for
    /// anonymous or first-touch memory, zeroing pages), which scale with cores until memory
    /// bandwidth runs out. Use the cores you can spare, rarely more than 4 to 8; for a file that
    /// is not in the page cache the disk, not the cores, sets the pace. On a machine whose
    /// transparent huge pages back the range, one thread is usually enough.
    ///
    /// - Parameters:
    ///   - range: Byte offsets within the mapping; `nil` (the default) for all of it.
    ///   - threads: The most threads to use, the caller's included; at least 1. A value of 0 or
    ///     less is a programmer error and traps.
    /// - Throws: As ``populate(range:)``: ``MmapError/Code/fault`` (with
    ///   ``MmapError/faultOffset``, the first page that fails) when a page cannot be faulted in
    ///   (truncated, its file system cannot provide it, or a guard page);
    ///   ``MmapError/Code/outOfMemory`` for anonymous memory the kernel cannot provide;
    ///   ``MmapError/Code/unsupported`` before Linux 5.14;
    ///   ``MmapError/Code/outOfBounds`` for a range outside the mapping. The pages populated
    ///   before a failure stay populated, which changes no contents.
    /// - Complexity: O(pages in the range), divided among the threads.
    ///
    /// The corresponding C functions are `madvise(2)` and `pthread_create(3)`.
    public func populate(range: Range<Int>? = nil, threads: Int) throws(MmapError) {
        guard threads > 0 else {
            fatalError("MmapKit: populate(range:threads:) needs at least 1 thread, not \(threads)")
        }
        try region.populate(range: region.resolve(range), forWriting: false, threads: threads)
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
    ///   pages (checked first: nothing changes); as ``populateForWriting(range:threads:)`` for
    ///   ``MmapDestructiveAdvice/populateWrite``.
    ///
    /// The corresponding C function is `madvise(2)`.
    public mutating func advise(_ advice: MmapDestructiveAdvice, range: Range<Int>? = nil) throws(MmapError) {
        try region.adviseDestructively(advice, range: region.resolve(range))
    }

    /// Prefaults the pages inside `range` for writing on up to `threads` threads at once
    /// (`MADV_POPULATE_WRITE`, Linux 5.14): anonymous memory is allocated, private pages are
    /// copied, shared file pages are made writable, so later writes take no page fault.
    ///
    /// It changes no byte, but it is `mutating`, like `advise(.populateWrite, range:)`, whose
    /// reach it has: only the whole pages inside the range are prefaulted, plus a partial first
    /// or last page at the ends of the mapping when the rest of the page is nobody's data (never
    /// on a shared file mapping, whose bytes outside the handle it would fault for writing). A
    /// range that holds no such page prefaults nothing. On a shared file mapping the pages become
    /// dirty without a byte changing; the kernel tracks dirtiness per folio, so a page of the
    /// same large folio outside the range may be written back too, unchanged (see
    /// ``MmapDestructiveAdvice/populateWrite``). Chunks are split as for
    /// ``populate(range:threads:)`` (at least 4 MiB each; the calling thread does the first),
    /// which also says how to choose `threads`; the default, 1, is `advise(.populateWrite,
    /// range:)`.
    ///
    /// - Parameters:
    ///   - range: Byte offsets within the mapping; `nil` (the default) for all of it.
    ///   - threads: The most threads to use, the caller's included; at least 1 (the default). A
    ///     value of 0 or less is a programmer error and traps.
    /// - Throws: ``MmapError/Code/fault`` (with ``MmapError/faultOffset``) as for
    ///   ``populate(range:)``: the file is shorter than the mapping, its file system cannot
    ///   provide the page (a full tmpfs, an exhausted hugetlbfs pool), or a guard page;
    ///   ``MmapError/Code/outOfMemory`` when memory runs out, or for explicit huge pages
    ///   made with ``MmapOptions/noReserve`` when the pool is empty (as ``populate(range:)``, a
    ///   memory cgroup's limit may instead invoke the OOM killer);
    ///   ``MmapError/Code/unsupported`` before Linux 5.14; ``MmapError/Code/outOfBounds`` for a
    ///   range outside the mapping. The pages populated before a failure stay populated.
    /// - Complexity: O(pages in the range), divided among the threads.
    ///
    /// The corresponding C functions are `madvise(2)` and `pthread_create(3)`.
    public mutating func populateForWriting(range: Range<Int>? = nil, threads: Int = 1) throws(MmapError) {
        guard threads > 0 else {
            fatalError("MmapKit: populateForWriting(range:threads:) needs at least 1 thread, not \(threads)")
        }
        try region.populate(range: region.resolve(range), forWriting: true, threads: threads)
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
