#if FoundationInterop
public import Foundation

// Foundation interop (trait `FoundationInterop`) for reservations.

extension MmapReservation {
    /// Maps `range.count` bytes of the file behind a Foundation `FileHandle`, from `fileOffset`,
    /// at `range` inside the reservation.
    ///
    /// As ``commit(_:fileDescriptor:fileOffset:sharing:)`` with the handle's descriptor.
    ///
    /// - Parameters:
    ///   - range: A page-aligned, non-empty range inside the reservation, overlapping nothing
    ///     committed.
    ///   - fileHandle: A handle open for reading and writing (shared) or reading (private); the
    ///     mapping stays valid after it is closed.
    ///   - fileOffset: A page-aligned file offset.
    ///   - sharing: ``MmapSharing/shared`` (the default) or ``MmapSharing/private``.
    /// - Throws: ``MmapError/Code/invalidArgument``, ``MmapError/Code/outOfBounds``,
    ///   ``MmapError/Code/notMappable``, or the kernel's errors for the file (`EACCES`,
    ///   `EBADF`), as the `CInt` call.
    ///
    /// The corresponding C function is `mmap(2)` with `MAP_FIXED`.
    public mutating func commit(
        _ range: Range<Int>,
        fileHandle: FileHandle,
        fileOffset: Int64,
        sharing: MmapSharing = .shared
    ) throws(MmapError) {
        try commit(range, fileDescriptor: fileHandle.fileDescriptor, fileOffset: fileOffset, sharing: sharing)
    }
}
#endif
