// MARK: - Durability

extension MmapHandle {
    /// Writes the dirty pages covering `range` back to the file and waits (`msync(MS_SYNC)`).
    ///
    /// A read-only mapping has dirty pages only if it came from ``makeReadOnly()`` after writes;
    /// otherwise this returns quickly. Private and anonymous mappings have no file to write to;
    /// the call succeeds and does nothing. The start of the range is aligned down to the page;
    /// the range is otherwise exact.
    ///
    /// - Parameter range: Byte offsets within the mapping; `nil` (the default) for all of it.
    /// - Throws: ``MmapError/Code/outOfBounds`` when `range` is not inside `0..<count`; the
    ///   kernel's error otherwise (`EIO` when writeback failed: do not blindly retry, Linux may
    ///   have dropped the dirty pages).
    ///
    /// The corresponding C function is `msync(2)`.
    public func flush(range: Range<Int>? = nil) throws(MmapError) {
        try region.flush(range: region.resolve(range), synchronous: true)
    }

    /// Schedules writeback of the pages covering `range` without waiting (`msync(MS_ASYNC)`).
    ///
    /// On Linux since 2.6.19 this is only a hint: the kernel already tracks dirty pages and
    /// writes them back on its own schedule, so `MS_ASYNC` does not start I/O. Use
    /// ``flush(range:)`` for durability.
    ///
    /// - Parameter range: Byte offsets within the mapping; `nil` (the default) for all of it.
    /// - Throws: ``MmapError/Code/outOfBounds`` when `range` is not inside `0..<count`, or the
    ///   kernel's error.
    ///
    /// The corresponding C function is `msync(2)`.
    public func flushAsync(range: Range<Int>? = nil) throws(MmapError) {
        try region.flush(range: region.resolve(range), synchronous: false)
    }

    /// Writes dirty pages back (`msync(MS_SYNC)`), then `fdatasync(2)`s `fileDescriptor`, which
    /// also makes a changed file size durable (after ``grow(to:fileDescriptor:allocate:mayMove:)``).
    ///
    /// - Parameter fileDescriptor: The descriptor of the mapped file.
    /// - Throws: The kernel's error from either call (operation ``MmapError/Operation/flush`` or
    ///   ``MmapError/Operation/dataSync``).
    ///
    /// The corresponding C functions are `msync(2)` and `fdatasync(2)`.
    public func flush(dataSyncing fileDescriptor: CInt) throws(MmapError) {
        try region.flush(dataSyncing: fileDescriptor)
    }
}
