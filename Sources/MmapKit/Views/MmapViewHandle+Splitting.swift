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
