// MARK: - Durability

extension Mmap {
    /// Writes every dirty page of the mapping back to the file and waits (`msync(MS_SYNC)`).
    ///
    /// A read-only mapping has dirty pages only if it came from ``MutableMmap/makeReadOnly()``
    /// after writes; otherwise this returns quickly. Private and anonymous mappings have no file
    /// to write to; the call succeeds and does nothing.
    ///
    /// - Throws: ``MmapError`` with the kernel's error (`EIO` when writeback failed; do not
    ///   blindly retry: Linux may have dropped the dirty pages).
    ///
    /// The corresponding C function is `msync(2)`.
    public func flush() throws(MmapError) {
        try region.flush(range: 0..<region.count, synchronous: true)
    }

    /// Writes the dirty pages covering `range` back to the file and waits (`msync(MS_SYNC)`).
    ///
    /// The start of the range is aligned down to the page; the range is otherwise exact.
    ///
    /// - Parameter range: Byte offsets within the mapping.
    /// - Throws: ``MmapError/Code/outOfBounds`` when `range` is not inside `0..<count`, or the
    ///   kernel's error.
    ///
    /// The corresponding C function is `msync(2)`.
    public func flush(range: Range<Int>) throws(MmapError) {
        try region.flush(range: range, synchronous: true)
    }

    /// Schedules writeback of the whole mapping without waiting (`msync(MS_ASYNC)`).
    ///
    /// On Linux since 2.6.19 this is only a hint: the kernel already tracks dirty pages and
    /// writes them back on its own schedule, so `MS_ASYNC` does not start I/O. Use ``flush()``
    /// for durability.
    ///
    /// - Throws: The kernel's error.
    ///
    /// The corresponding C function is `msync(2)`.
    public func flushAsync() throws(MmapError) {
        try region.flush(range: 0..<region.count, synchronous: false)
    }

    /// Schedules writeback of the pages covering `range` without waiting (`msync(MS_ASYNC)`,
    /// a hint on Linux; see ``flushAsync()``).
    ///
    /// - Parameter range: Byte offsets within the mapping.
    /// - Throws: ``MmapError/Code/outOfBounds`` when `range` is not inside `0..<count`, or the
    ///   kernel's error.
    public func flushAsync(range: Range<Int>) throws(MmapError) {
        try region.flush(range: range, synchronous: false)
    }
}
