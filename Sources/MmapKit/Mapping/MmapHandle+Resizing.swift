internal import Glibc

// MARK: - Resizing

extension MmapHandle {
    /// Resizes the mapping to `count` bytes (`mremap(2)`, Linux-only).
    ///
    /// `mutating`, so it cannot run while a span of the mapping is alive: the compiler ensures
    /// that no borrowed bytes move or vanish. Growing a file mapping past the end of the file
    /// is allowed; grow the file first (touching pages past its end raises `SIGBUS`), or use
    /// ``grow(to:fileDescriptor:allocate:mayMove:)``.
    ///
    /// - Parameters:
    ///   - count: The new count in bytes, greater than 0.
    ///   - mayMove: Whether the kernel may move the mapping to a new address
    ///     (`MREMAP_MAYMOVE`). Without it, a grow blocked by a neighbouring mapping fails.
    /// - Throws: ``MmapError/Code/invalidArgument`` for a count of 0 or less, or an empty
    ///   mapping; ``MmapError/Code/outOfMemory`` when the mapping cannot grow in place and
    ///   `mayMove` is false; ``MmapError/Code/unsupported`` when advice or locking on part of
    ///   the mapping split it in the kernel (apply the same advice to all of it, or unlock, and
    ///   retry), when shared anonymous memory would grow (its new pages would have no
    ///   backing), or when a huge-page mapping (explicit huge pages, or a file on hugetlbfs)
    ///   would grow past its mapped huge pages (Linux's `mremap` never grows those). On failure
    ///   the mapping is unchanged.
    ///
    /// The corresponding C function is `mremap(2)`.
    public mutating func remap(count: Int, mayMove: Bool) throws(MmapError) {
        try region.remap(count: count, mayMove: mayMove)
    }
}

extension MmapHandle where Access == MmapReadWrite {
    /// Grows the mapped file and the mapping together: the pattern of an append-only segment.
    ///
    /// Extends the file behind `fileDescriptor` so that it covers `count` bytes from the
    /// mapping's offset, with `fallocate(2)` (blocks are reserved now, so writes through the
    /// mapping cannot meet a full disk as `SIGBUS`) or `ftruncate(2)` (a sparse extension), then
    /// resizes the mapping (`mremap(2)`). An empty mapping is mapped afresh. Follow with
    /// ``flush(dataSyncing:)`` to make the new size durable. To grow without ever moving, map the
    /// file with ``MmapGrowableFile`` instead.
    ///
    /// - Parameters:
    ///   - count: The new count, not smaller than the current one.
    ///   - fileDescriptor: A read-write descriptor of the mapped file.
    ///   - allocate: `true` (the default) for `fallocate`, `false` for `ftruncate`.
    ///   - mayMove: Whether the mapping may move to a new address; `true` by default.
    /// - Throws: ``MmapError/Code/invalidArgument`` for a smaller count, an overflowing end, or
    ///   anonymous memory (whose writes could never reach the file);
    ///   ``MmapError/Code/noSpace`` when the file system is full;
    ///   ``MmapError/Code/permissionDenied`` for a descriptor not open for writing (read-only,
    ///   or `O_PATH`);
    ///   ``MmapError/Code/unsupported``,
    ///   before the file changes, when a huge-page mapping would grow past its mapped huge pages;
    ///   the kernel's error from
    ///   `fstat`, `fallocate`, `ftruncate` or `mremap`. When the file was extended but the remap
    ///   failed, the file stays extended and the mapping is unchanged.
    ///
    /// The corresponding C functions are `fallocate(2)` or `ftruncate(2)`, then `mremap(2)`.
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
}
