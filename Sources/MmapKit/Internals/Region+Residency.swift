// MARK: - Residency

extension Region {
    /// The most pages one ``residency(range:)`` call reports: a 64 MiB vector, 256 GiB of 4 KiB
    /// pages. A sparse multi-TiB reservation would otherwise need gigabytes at once.
    internal static let maximumResidencyPages = 1 << 26

    /// Which pages covering `range` are resident (`mincore(2)`), in system pages.
    internal func residency(range: Range<Int>) throws(MmapError) -> MmapResidency {
        try validate(range, .residency)
        let pageSize = systemPageSize
        guard !range.isEmpty, let base = unsafe base else {
            return MmapResidency(pageSize: pageSize, vector: [])
        }
        let first = PageAlignment.alignDown(offsetInPage + range.lowerBound, to: pageSize)
        let length = offsetInPage + range.upperBound - first
        let pages = (length + pageSize - 1) / pageSize
        guard pages <= Region.maximumResidencyPages else {
            throw .invalid(
                .residency,
                "bytes \(range) span \(pages) pages, more than the \(Region.maximumResidencyPages) that one residency "
                    + "vector holds (one byte per page); ask for smaller ranges"
            )
        }
        var error: CInt = 0
        let vector = unsafe [UInt8](unsafeUninitializedCapacity: pages) { buffer, initialized in
            error = unsafe system_mincore(base + first, length, buffer.baseAddress.unsafelyUnwrapped)
            initialized = error == 0 ? pages : 0
        }
        try MmapError.check(error, .residency, "cannot read the residency of bytes \(range)")
        return MmapResidency(pageSize: pageSize, vector: vector)
    }
}
