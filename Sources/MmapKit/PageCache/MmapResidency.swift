/// Which pages of a range of a mapping are resident in memory, at one point in time.
///
/// Returned by `residency(range:)` (`mincore(2)`). Pages are system pages, numbered from the
/// page that contains the range's first byte. The value holds one byte per page and nothing
/// else; ``residentRuns`` is computed as you iterate it.
///
/// Residency says only whether a page is in memory, not whether the file still covers it, and
/// may be out of date as soon as it is returned.
public struct MmapResidency: Hashable, Sendable {
    /// The size of a page in bytes (the system page size).
    public let pageSize: Int
    /// The number of pages resident when the value was made.
    public let residentCount: Int
    @usableFromInline internal let vector: [UInt8]

    internal init(pageSize: Int, vector: [UInt8]) {
        self.pageSize = pageSize
        self.vector = vector
        var resident = 0
        for byte in vector where byte & 1 != 0 { resident += 1 }
        self.residentCount = resident
    }

    /// The number of pages that cover the range.
    public var pageCount: Int { vector.count }

    /// The bytes in resident pages (`residentCount * pageSize`).
    public var residentBytes: Int { residentCount * pageSize }

    /// Whether every page of the range is resident (true for an empty range).
    public var isFullyResident: Bool { residentCount == pageCount }

    /// Whether page `page` (counted from the range's first page) is resident.
    ///
    /// - Parameter page: A page index in `0..<pageCount`; out of range traps.
    public func isResident(page: Int) -> Bool {
        precondition(page >= 0 && page < vector.count, "MmapKit: page \(page) is outside 0..<\(vector.count)")
        return vector[page] & 1 != 0
    }

    /// The maximal runs of resident pages, as ranges of page indices, in order.
    public var residentRuns: ResidentRuns { ResidentRuns(vector: vector) }

    /// The runs of resident pages of an ``MmapResidency``, computed while iterating.
    public struct ResidentRuns: Sequence, Sendable {
        internal let vector: [UInt8]

        /// Returns an iterator over the runs.
        public func makeIterator() -> Iterator { Iterator(vector: vector, position: 0) }

        /// Iterates the runs of resident pages.
        public struct Iterator: IteratorProtocol, Sendable {
            internal let vector: [UInt8]
            internal var position: Int

            /// The next run of resident pages, or nil after the last.
            public mutating func next() -> Range<Int>? {
                while position < vector.count && vector[position] & 1 == 0 { position += 1 }
                guard position < vector.count else { return nil }
                let start = position
                while position < vector.count && vector[position] & 1 != 0 { position += 1 }
                return start..<position
            }
        }
    }
}
