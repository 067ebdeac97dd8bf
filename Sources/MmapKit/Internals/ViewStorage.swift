/// The one implementation behind `MmapView` and `MutableMmapView`: a window `[offset, offset +
/// count)` of a shared mapping's bytes.
///
/// Invariant: the window lies inside `mapping.region`'s user bytes, `start` is the address of
/// its first byte (nil only for an empty mapping), and no other view's window overlaps it.
/// The views that hold a `ViewStorage` are noncopyable, so the invariant survives moves.
@safe
@usableFromInline
@frozen
internal struct ViewStorage: @unchecked Sendable {
    @usableFromInline internal let mapping: SharedMapping
    @usableFromInline internal var start: UnsafeMutableRawPointer?
    @usableFromInline internal var offset: Int
    @usableFromInline internal var count: Int

    /// A window on the whole of `region`, which the new storage now owns.
    internal init(owning region: Region) {
        self.mapping = SharedMapping(region)
        unsafe self.start = region.start
        self.offset = 0
        self.count = region.count
    }

    /// The window's bytes as a buffer (empty with a nil base for an empty mapping).
    ///
    /// - Precondition: the caller uses the buffer only while the view holding this storage is
    ///   alive and borrowed (mutably borrowed to write), and does not keep it.
    @unsafe
    @inlinable
    internal var buffer: UnsafeMutableRawBufferPointer {
        unsafe UnsafeMutableRawBufferPointer(start: start, count: count)
    }

    /// The window's range in the region's user bytes.
    internal var range: Range<Int> { offset..<(offset + count) }

    /// Keeps `[0, position)` here and returns the window `[position, count)`.
    internal mutating func split(at position: Int) throws(MmapError) -> ViewStorage {
        guard position >= 0, position <= count else {
            throw .outOfBounds(.split, "split offset \(position) is outside the \(count)-byte view")
        }
        var tail = self
        unsafe tail.start = start.map { unsafe $0 + position }
        tail.offset = offset + position
        tail.count = count - position
        count = position
        return tail
    }

    /// Narrows the window to `subrange` of itself.
    internal mutating func restrict(to subrange: Range<Int>) throws(MmapError) {
        guard subrange.lowerBound >= 0, subrange.upperBound <= count else {
            throw .outOfBounds(.restrict, "range \(subrange) is outside the \(count)-byte view")
        }
        unsafe start = start.map { unsafe $0 + subrange.lowerBound }
        offset += subrange.lowerBound
        count = subrange.count
    }

    /// Translates a range of the view into the region, after validating it.
    internal func regionRange(_ subrange: Range<Int>?, _ operation: MmapError.Operation) throws(MmapError) -> Range<Int>
    {
        guard let subrange else { return range }
        guard subrange.lowerBound >= 0, subrange.upperBound <= count else {
            throw .outOfBounds(operation, "range \(subrange) is outside the \(count)-byte view")
        }
        return (offset + subrange.lowerBound)..<(offset + subrange.upperBound)
    }
}
