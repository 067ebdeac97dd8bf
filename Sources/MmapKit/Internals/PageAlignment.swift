/// The one page-alignment arithmetic of MmapKit: rounding offsets, lengths and addresses to a
/// page (the system page or an explicit huge page).
///
/// Every alignment is a positive power of two (a page size); that is checked, since a wrong
/// alignment would make every rounding silently wrong. Rounding up reports overflow as `nil`
/// instead of wrapping, so a length near `Int.max` becomes an error and never a short mapping.
internal enum PageAlignment {
    /// `value` rounded down to a multiple of `alignment` (towards negative infinity).
    @inline(__always)
    internal static func alignDown<T: FixedWidthInteger>(_ value: T, to alignment: T) -> T {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0, "MmapKit: alignment must be a power of two")
        return value & ~(alignment - 1)
    }

    /// `value` rounded up to a multiple of `alignment`, or `nil` when the result does not fit
    /// in `T`.
    @inline(__always)
    internal static func alignUp<T: FixedWidthInteger>(_ value: T, to alignment: T) -> T? {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0, "MmapKit: alignment must be a power of two")
        let (sum, overflow) = value.addingReportingOverflow(alignment - 1)
        guard !overflow else { return nil }
        return sum & ~(alignment - 1)
    }

    /// Whether `value` is a multiple of `alignment`.
    @inline(__always)
    internal static func isAligned<T: FixedWidthInteger>(_ value: T, to alignment: T) -> Bool {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0, "MmapKit: alignment must be a power of two")
        return value & (alignment - 1) == 0
    }
}
