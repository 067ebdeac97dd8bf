internal import Glibc

/// A range of address space reserved without memory, in which page-aligned subranges are
/// committed and decommitted in place: nothing in it ever moves.
///
/// A reservation maps `count` bytes with `PROT_NONE` and `MAP_NORESERVE`: it costs address
/// space, not memory. ``commit(_:)`` makes a page-aligned subrange readable and writable
/// (anonymous, zero-filled), ``commit(_:fileDescriptor:fileOffset:sharing:)`` maps a file there,
/// and ``decommit(_:)`` returns the pages to the reservation. Addresses inside never change, so
/// pointers into committed ranges stay valid as an arena or a file grows: the pattern of LMDB's
/// fixed map size, LLFIO's reservations and the vmcache buffer manager.
///
/// Unlike ``MmapHandle/remap(count:mayMove:)``, which may move a mapping (or fail to grow it in
/// place), a reservation never moves: growth is bounded by the reserved size instead.
///
/// The reservation is one mapping, unmapped exactly once when the value ends. Commits replace
/// pages of it in place (`mmap(2)` with `MAP_FIXED`, strictly inside the reservation).
@frozen
@safe
public struct MmapReservation: ~Copyable, Sendable {
    // Invariant: `region` is the reservation (base, mappedLength = count, page aligned) owned by
    // this value; `committed` lists disjoint, sorted, page-aligned ranges inside it that are
    // mapped readable and writable; `lost` lists ranges the kernel removed and MmapKit could not
    // reserve again (normally empty): they are no longer this value's and are never touched;
    // every other page is PROT_NONE.
    @usableFromInline internal var region: Region
    @usableFromInline internal var committed: [Range<Int>]
    @usableFromInline internal var lost: [Range<Int>]

    /// Reserves `count` bytes of address space (rounded up to the page), committing nothing.
    ///
    /// - Parameter count: The size of the reservation; it bounds every later commit.
    /// - Throws: ``MmapError/Code/invalidArgument`` for a count below 1 or too large;
    ///   ``MmapError/Code/outOfMemory`` when the address space is exhausted.
    ///
    /// The corresponding C function is `mmap(2)` with `PROT_NONE | MAP_NORESERVE`.
    public init(count: Int) throws(MmapError) {
        guard count > 0 else { throw .invalid(.map, "a reservation of \(count) bytes is empty or negative") }
        let length = try Region.roundedLength(offsetInPage: 0, count: count, alignment: systemPageSize)
        region = try Region.reserve(length: length, count: length)
        committed = []
        lost = []
    }

    deinit {
        // Only what is still ours: another allocation may live in the lost ranges now.
        region.unmapDiscardingError(around: lost)
    }

    /// The size of the reservation in bytes (a multiple of the page size).
    public var count: Int { region.count }

    /// The committed ranges, sorted and disjoint.
    public var committedRanges: [Range<Int>] { committed }

    /// The address of the first byte; it never changes for the life of the reservation.
    public var baseAddress: UInt { UInt(bitPattern: unsafe region.base) }

    /// The first byte of the reservation.
    ///
    /// - Precondition: the caller touches only committed bytes, and only while the reservation
    ///   is alive and borrowed (mutably borrowed to write), and does not keep the pointer.
    @unsafe
    @inlinable
    internal var base: UnsafeMutableRawPointer { unsafe region.base.unsafelyUnwrapped }
}

// MARK: - Committing

extension MmapReservation {
    /// Commits `range` as zero-filled, readable and writable anonymous memory.
    ///
    /// - Parameter range: A page-aligned, non-empty range inside the reservation that overlaps
    ///   no committed range.
    /// - Throws: ``MmapError/Code/invalidArgument`` for an empty or unaligned range or one that
    ///   overlaps a committed range; ``MmapError/Code/outOfBounds`` outside the reservation;
    ///   ``MmapError/Code/outOfMemory`` from the kernel.
    ///
    /// The corresponding C function is `mmap(2)` with `MAP_FIXED`.
    public mutating func commit(_ range: Range<Int>) throws(MmapError) {
        try checkCommittable(range)
        try replace(range, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, .commit)
        insert(range)
    }

    /// Maps `range.count` bytes of a file, from `fileOffset`, at `range` inside the reservation.
    ///
    /// - Parameters:
    ///   - range: A page-aligned, non-empty range inside the reservation, overlapping nothing
    ///     committed.
    ///   - fileDescriptor: A descriptor open for reading and writing (shared) or reading
    ///     (private); the mapping stays valid after it is closed.
    ///   - fileOffset: A page-aligned file offset.
    ///   - sharing: ``MmapSharing/shared`` (the default) or ``MmapSharing/private``.
    /// - Throws: As ``commit(_:)``; ``MmapError/Code/invalidArgument`` also when the file offset
    ///   plus the range's length passes `Int64.max`, or for a file on hugetlbfs when the range's
    ///   address, its length or the file offset is not a multiple of the huge page (the kernel
    ///   would replace pages around the range); ``MmapError/Code/notMappable`` for a directory,
    ///   FIFO or socket; the kernel's errors for the file (`EACCES`, `EBADF`).
    public mutating func commit(
        _ range: Range<Int>,
        fileDescriptor: CInt,
        fileOffset: Int64,
        sharing: MmapSharing = .shared
    ) throws(MmapError) {
        try checkCommittable(range)
        guard fileOffset >= 0, PageAlignment.isAligned(fileOffset, to: Int64(systemPageSize)) else {
            throw .invalid(.commit, "file offset \(fileOffset) is not a non-negative multiple of the page size")
        }
        guard Int64.max - fileOffset >= Int64(range.count) else {
            throw .invalid(
                .commit,
                "file offset \(fileOffset) + \(range.count) bytes passes the largest 64-bit file offset"
            )
        }
        try Self.checkMappable(fileDescriptor)
        if let hugePage = try hugeTLBPageSize(fileDescriptor) {
            // The kernel maps a hugetlbfs file in whole huge pages: a range that is not made of
            // them would replace pages around it, committed or not.
            let address = Int(bitPattern: baseAddress) + range.lowerBound
            guard PageAlignment.isAligned(address, to: hugePage),
                PageAlignment.isAligned(range.count, to: hugePage),
                PageAlignment.isAligned(fileOffset, to: Int64(hugePage))
            else {
                throw .invalid(
                    .commit,
                    "descriptor \(fileDescriptor) is on hugetlbfs, mapped in \(hugePage >> 10) KiB huge pages: the "
                        + "range's address (base + \(range.lowerBound)), its length \(range.count) and the file offset "
                        + "\(fileOffset) must all be multiples of it"
                )
            }
        }
        let flags = sharing == .shared ? MAP_SHARED : MAP_PRIVATE
        try replace(range, PROT_READ | PROT_WRITE, flags, fileDescriptor, fileOffset, .commit)
        insert(range)
    }

    /// Returns the pages of `range` to the reservation: their contents are discarded and their
    /// memory freed; a later commit of the same pages reads zeros (or the file again).
    ///
    /// `mutating`, so no span of the reservation can be alive.
    ///
    /// - Parameter range: A page-aligned, non-empty range lying entirely inside committed ranges.
    /// - Throws: ``MmapError/Code/invalidArgument`` for a range that is unaligned or not
    ///   entirely committed; ``MmapError/Code/outOfBounds`` outside the reservation.
    public mutating func decommit(_ range: Range<Int>) throws(MmapError) {
        try checkAligned(range, .decommit)
        guard isCommitted(range) else {
            throw .invalid(.decommit, "range \(range) is not entirely committed")
        }
        try replace(range, PROT_NONE, Region.reservedFlags, -1, 0, .decommit)
        remove(range)
    }

    /// Whether every byte of `range` is committed (possibly by several adjacent commits).
    ///
    /// - Complexity: O(number of committed ranges).
    public func isCommitted(_ range: Range<Int>) -> Bool {
        guard !range.isEmpty else { return true }
        var position = range.lowerBound
        for piece in committed where piece.upperBound > position {  // sorted and disjoint
            guard piece.lowerBound <= position else { return false }
            position = piece.upperBound
            if position >= range.upperBound { return true }
        }
        return false
    }
}

// MARK: - Bytes

extension MmapReservation {
    /// The bytes of a committed range, borrowed from the reservation.
    ///
    /// - Parameter range: A range inside committed memory (any alignment).
    /// - Returns: A span of the range.
    /// - Throws: ``MmapError/Code/outOfBounds`` when any byte of `range` is not committed.
    @_lifetime(borrow self)
    public func bytes(in range: Range<Int>) throws(MmapError) -> RawSpan {
        try checkReadable(range)
        let span = unsafe RawSpan(_unsafeStart: base + range.lowerBound, byteCount: range.count)
        return unsafe _overrideLifetime(span, borrowing: self)
    }

    /// The bytes of a committed range for reading and writing, with exclusive access.
    ///
    /// - Parameter range: A range inside committed memory (any alignment).
    /// - Returns: A mutable span of the range.
    /// - Throws: ``MmapError/Code/outOfBounds`` when any byte of `range` is not committed.
    @_lifetime(&self)
    public mutating func mutableBytes(in range: Range<Int>) throws(MmapError) -> MutableRawSpan {
        try checkReadable(range)
        let span = unsafe MutableRawSpan(_unsafeStart: base + range.lowerBound, byteCount: range.count)
        return unsafe _overrideLifetime(span, mutating: &self)
    }

    /// Calls `body` with a pointer to the whole reservation, valid only during the call.
    ///
    /// Only the bytes of ``committedRanges`` may be read: every other page is `PROT_NONE`, and
    /// touching it raises `SIGSEGV`. Guarded access (``MmapBytes/guardedLoad(fromByteOffset:as:)``
    /// and the rest) checks that for you, and refuses uncommitted bytes with
    /// ``MmapError/Code/outOfBounds`` before anything is read.
    ///
    /// - Parameter body: A closure that reads committed bytes through the pointer.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    public func withUnsafeBytes<R: ~Copyable, E: Error>(
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try unsafe body(UnsafeRawBufferPointer(start: base, count: region.count))
    }

    /// Calls `body` with a mutable pointer to the whole reservation, valid only during the call.
    ///
    /// Only the bytes of ``committedRanges`` may be read or written (see ``withUnsafeBytes(_:)``).
    ///
    /// - Parameter body: A closure that reads and writes committed bytes through the pointer.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    public mutating func withUnsafeMutableBytes<R: ~Copyable, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try unsafe body(UnsafeMutableRawBufferPointer(start: base, count: region.count))
    }

    /// Not API: a guarded access must lie inside committed memory (checked before anything is
    /// read or written; see ``MmapBytes/_checkGuardedAccess(offset:length:)``).
    ///
    /// - Throws: ``MmapError/Code/outOfBounds`` when any byte is outside the reservation or not
    ///   committed.
    public func _checkGuardedAccess(offset: Int, length: Int) throws(MmapError) {
        try _checkGuardedBounds(offset, length, region.count)
        guard isCommitted(offset..<(offset + length)) else {
            throw .outOfBounds(.access, "\(length) bytes at offset \(offset) are not inside committed memory")
        }
    }
}

// MARK: - Validation and bookkeeping

extension MmapReservation {
    private func checkAligned(_ range: Range<Int>, _ operation: MmapError.Operation) throws(MmapError) {
        guard range.lowerBound >= 0, range.upperBound <= region.count else {
            throw .outOfBounds(operation, "range \(range) is outside the \(region.count)-byte reservation")
        }
        let page = systemPageSize
        guard !range.isEmpty, PageAlignment.isAligned(range.lowerBound, to: page),
            PageAlignment.isAligned(range.upperBound, to: page)
        else {
            throw .invalid(operation, "range \(range) is empty or not aligned to the \(page)-byte page")
        }
    }

    private func checkCommittable(_ range: Range<Int>) throws(MmapError) {
        try checkAligned(range, .commit)
        if let hole = lost.first(where: { $0.overlaps(range) }) {
            throw .invalid(.commit, "range \(range) overlaps \(hole), which the kernel took from the reservation")
        }
        if let overlap = committed.first(where: { $0.overlaps(range) }) {
            throw .invalid(.commit, "range \(range) overlaps the committed range \(overlap)")
        }
    }

    private func checkReadable(_ range: Range<Int>) throws(MmapError) {
        guard range.lowerBound >= 0, range.upperBound <= region.count, isCommitted(range) else {
            throw .outOfBounds(.access, "range \(range) is not inside committed memory")
        }
    }

    /// Refuses, before any page is touched, descriptors whose mmap handler the kernel would
    /// call only after removing the pages at the target (sockets, FIFOs, directories).
    private static func checkMappable(_ fd: CInt) throws(MmapError) {
        switch try fileStatus(fd).kind {
        case .regular, .device:
            return
        case .directory, .fifo, .socket, .other:
            throw MmapError(
                .commit,
                .notMappable,
                errno: ENODEV,
                "descriptor \(fd) is not a regular file or a device, so it cannot be mapped"
            )
        }
    }

    /// Replaces the pages of `range` in place (`mmap(2)` with `MAP_FIXED`).
    ///
    /// A failed `MAP_FIXED` may already have removed the old pages (the kernel does so before
    /// some files' mmap handlers refuse), leaving a hole that another allocation could take. So
    /// after a failure MmapKit looks (`mincore(2)`, which changes nothing): if the range is
    /// still mapped, nothing changed and the error is thrown; if there is a hole, the reserved
    /// pages are put back with `MAP_FIXED_NOREPLACE`, which never replaces what another thread
    /// may have mapped there meanwhile. If that fails too (the hole is taken, or no memory),
    /// the range is no longer part of the reservation (``lost``): it is never committed, read or
    /// unmapped by this value again. A failed decommit whose pages the kernel removed is
    /// complete once the hole is reserved again.
    ///
    /// One race is left, and cannot be closed with `MAP_FIXED`: another thread that maps the
    /// whole hole between the failure and the look makes the range seem unchanged.
    private mutating func replace(
        _ range: Range<Int>,
        _ protection: CInt,
        _ flags: CInt,
        _ fd: CInt,
        _ offset: Int64,
        _ operation: MmapError.Operation
    ) throws(MmapError) {
        let error = region.replaceInPlace(
            range,
            protection: protection,
            flags: flags,
            fileDescriptor: fd,
            fileOffset: offset
        )
        guard error == 0 else {
            let failure = MmapError.system(
                operation,
                errno: error,
                "cannot \(operation == .commit ? "commit" : "decommit") \(range)"
            )
            if region.isMapped(range) { throw failure }  // nothing changed
            let repair = region.reserveHole(range)
            if repair == 0 {
                if operation == .decommit { return }  // the pages are gone and reserved again
                throw failure
            }
            lost.append(range)
            remove(range)
            var lostFailure = failure
            lostFailure.message +=
                "; the kernel removed the pages and they could not be reserved again (\(errnoName(repair))), so "
                + "they are no longer part of the reservation (any data committed there is gone)"
            throw lostFailure
        }
    }

    private mutating func insert(_ range: Range<Int>) {
        let index = committed.firstIndex { $0.lowerBound > range.lowerBound } ?? committed.endIndex
        committed.insert(range, at: index)
    }

    private mutating func remove(_ range: Range<Int>) {
        var result: [Range<Int>] = []
        for piece in committed {
            if !piece.overlaps(range) {
                result.append(piece)
                continue
            }
            if piece.lowerBound < range.lowerBound { result.append(piece.lowerBound..<range.lowerBound) }
            if range.upperBound < piece.upperBound { result.append(range.upperBound..<piece.upperBound) }
        }
        committed = result
    }
}
