internal import Glibc

// Reservations: address space mapped PROT_NONE and MAP_NORESERVE, whose pages are replaced in
// place. The one set-up of `MmapReservation` and `MmapMirroredRing`, and the raw calls both make
// inside a reservation.

extension Region {
    /// The flags of reserved (uncommitted) pages.
    internal static let reservedFlags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE

    /// Reserves `length` bytes of address space (a positive multiple of the page): one mapping,
    /// `PROT_NONE` and `MAP_NORESERVE`, that costs address space and no memory.
    ///
    /// - Parameters:
    ///   - length: The bytes to reserve, a positive multiple of the system page.
    ///   - count: The region's ``count``: `length` for a reservation, the capacity of a ring
    ///     (which reserves room for two copies).
    /// - Throws: The kernel's error (`ENOMEM` when the address space is exhausted).
    internal static func reserve(length: Int, count: Int) throws(MmapError) -> Region {
        precondition(length > 0 && PageAlignment.isAligned(length, to: systemPageSize) && count <= length)
        var address: UnsafeMutableRawPointer? = nil
        try MmapError.check(
            unsafe system_mmap(nil, length, PROT_NONE, reservedFlags, -1, 0, &address),
            .map,
            "cannot reserve \(length) bytes of address space"
        )
        return unsafe Region(
            base: address,
            mappedLength: length,
            offsetInPage: 0,
            count: count,
            alignment: systemPageSize,
            fileOffset: 0,
            flags: reservedFlags,
            options: MmapOptions()
        )
    }

    /// Replaces the pages of `range` of the mapping in place (`mmap(2)` with `MAP_FIXED`):
    /// 0, or the errno. The caller decides what a failure means (a failed `MAP_FIXED` may have
    /// removed the old pages already; see ``isMapped(_:)`` and ``reserveHole(_:)``).
    ///
    /// - Precondition: `range` is a page-aligned, non-empty range inside the mapping.
    internal func replaceInPlace(
        _ range: Range<Int>,
        protection: CInt,
        flags: CInt,
        fileDescriptor fd: CInt,
        fileOffset: Int64
    ) -> CInt {
        unsafe system_mmapInPlace(address(of: range), range.count, protection, flags, fd, fileOffset)
    }

    /// Puts reserved pages back into `range`, a hole of the mapping that a failed `MAP_FIXED`
    /// left (`MAP_FIXED_NOREPLACE`: never replaces what another thread mapped there meanwhile).
    /// 0, or the errno (`EEXIST` when anything is mapped there now).
    ///
    /// - Precondition: `range` is a page-aligned, non-empty range inside the mapping.
    internal func reserveHole(_ range: Range<Int>) -> CInt {
        unsafe system_mmapIntoHole(address(of: range), range.count, PROT_NONE, Region.reservedFlags, -1, 0)
    }

    /// Whether every page of `range` of the mapping is mapped (`mincore(2)` reports `ENOMEM` for
    /// a hole), asked in chunks so that no vector proportional to the range is needed.
    ///
    /// - Precondition: `range` is a page-aligned range inside the mapping.
    internal func isMapped(_ range: Range<Int>) -> Bool {
        let address = unsafe address(of: range)
        let length = range.count
        let page = systemPageSize
        let chunkPages = 256
        var offset = 0
        return unsafe withUnsafeTemporaryAllocation(of: UInt8.self, capacity: chunkPages) { vector in
            while offset < length {
                let chunk = min(length - offset, chunkPages * page)
                let error = unsafe system_mincore(address + offset, chunk, vector.baseAddress.unsafelyUnwrapped)
                if error == ENOMEM { return false }
                offset += chunk
            }
            return true
        }
    }

    /// Unmaps the mapping piece by piece around `lost` (ranges the kernel took and MmapKit could
    /// not reserve again: another allocation may live there now), then counts the mapping's one
    /// unmapping. If a piece cannot be unmapped, it leaks and the mapping stays counted, as for
    /// any `deinit`.
    internal func unmapDiscardingError(around lost: [Range<Int>]) {
        guard !lost.isEmpty, let base = unsafe base else { return unmapDiscardingError() }
        var position = 0
        var unmappedAll = true
        for hole in lost.sorted(by: { $0.lowerBound < $1.lowerBound }) + [mappedLength..<mappedLength] {
            if position < hole.lowerBound {
                let length = hole.lowerBound - position
                if unsafe system_munmapPart(base + position, length) != 0 { unmappedAll = false }
            }
            position = max(position, hole.upperBound)
        }
        if unmappedAll { system_countUnmap() }
    }

    /// The address of `range.lowerBound` from `base`.
    ///
    /// - Precondition: the mapping is not empty and `range` lies inside `[0, mappedLength)`.
    @unsafe
    private func address(of range: Range<Int>) -> UnsafeMutableRawPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= mappedLength, "MmapKit: range outside the mapping")
        return unsafe base.unsafelyUnwrapped + range.lowerBound
    }
}

// MARK: - Mirrored ring

extension Region {
    /// A reservation of `2 * capacity` bytes whose two halves map the same `capacity` bytes of a
    /// sealed memfd (see ``MmapMirroredRing``); ``count`` is `capacity`.
    ///
    /// - Precondition: `capacity` is a positive multiple of the page, at most `Int.max / 2`.
    /// - Throws: The kernel's errors from `memfd_create`, `ftruncate`, `fcntl` or `mmap`.
    ///   Nothing stays mapped or open on failure.
    internal static func mirroredRing(capacity: Int) throws(MmapError) -> Region {
        try withSealedMemoryFile(count: capacity) { fd throws(MmapError) -> Region in
            let region = try reserve(length: 2 * capacity, count: capacity)
            for half in 0..<2 {
                let range = (half * capacity)..<((half + 1) * capacity)
                let error = region.replaceInPlace(
                    range,
                    protection: PROT_READ | PROT_WRITE,
                    flags: MAP_SHARED,
                    fileDescriptor: fd,
                    fileOffset: 0
                )
                guard error == 0 else {
                    region.unmapDiscardingError()
                    throw .system(.commit, errno: error, "cannot map half \(half) of the ring")
                }
            }
            return region
        }
    }
}
