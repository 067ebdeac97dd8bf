internal import CMmapShim
internal import Glibc

// MARK: - Advice

extension Region {
    /// Applies advice that never destroys contents to the pages covering `range` (aligned
    /// outward: a neighbour's page may receive the advice too, which is harmless).
    internal func advise(_ advice: CInt, _ name: String, range: Range<Int>) throws(MmapError) {
        try validate(range, .advise)
        guard !range.isEmpty else { return }
        let (address, length) = unsafe pages(covering: range)
        try unsafe madvise(address, length, advice, name, range)
    }

    /// Applies advice that may destroy contents to the whole pages inside `range` only: a page
    /// partly outside the range is left alone, except at the mapping's own ends, where the rest
    /// of the page belongs to nobody else. A range that contains no whole page changes nothing.
    internal func adviseDestructively(_ advice: CInt, _ name: String, range: Range<Int>) throws(MmapError) {
        try validate(range, .advise)
        guard !range.isEmpty, let base = unsafe base else { return }
        let first = range.lowerBound == 0 ? 0 : Int(alignUp(slack + range.lowerBound))
        let end =
            range.upperBound == count
            ? mappedLength : Int(CMmapShim_alignDown(UInt64(slack + range.upperBound), UInt64(alignment)))
        guard first < end else { return }
        try unsafe madvise(base + first, end - first, advice, name, range)
    }

    private func madvise(
        _ address: UnsafeMutableRawPointer,
        _ length: Int,
        _ advice: CInt,
        _ name: String,
        _ range: Range<Int>
    ) throws(MmapError) {
        let error = unsafe system_madvise(address, length, advice)
        guard error == 0 else {
            let context =
                error == EINVAL
                ? "\(name) is not supported for this mapping by this kernel"
                : "cannot apply \(name) to bytes \(range)"
            throw .system(.advise, errno: error, context)
        }
    }

    private func alignUp(_ offset: Int) -> UInt64 {
        // Cannot overflow: offset <= mappedLength, which is a multiple of the alignment.
        CMmapShim_alignDown(UInt64(offset) + UInt64(alignment) - 1, UInt64(alignment))
    }

    /// Whether the kernel accepts `advice`, asked on scratch anonymous memory (private, or
    /// shared when `shared`): the 2 MiB-aligned window inside a 4 MiB no-reserve mapping, with
    /// one byte touched, because MADV_COLLAPSE refuses anything but populated, aligned
    /// huge-page ranges. Costs one mmap, one page fault, one madvise and one munmap.
    internal static func probe(_ advice: CInt, shared: Bool) -> Bool {
        let window = 2 << 20
        guard
            let region = try? mapAnonymous(count: 2 * window, shared: shared, options: MmapOptions().noReserve()),
            let base = unsafe region.base
        else { return false }
        defer { region.unmapAfterFailure() }
        let address = UInt(bitPattern: base)
        let aligned = unsafe base + Int((address + UInt(window) - 1) & ~UInt(window - 1) - address)
        unsafe aligned.storeBytes(of: 1, as: UInt8.self)
        return unsafe system_madvise(aligned, window, advice) == 0
    }
}

// MARK: - Residency

extension Region {
    /// Which pages covering `range` are resident (`mincore(2)`), in system pages.
    internal func residency(range: Range<Int>) throws(MmapError) -> MmapResidency {
        try validate(range, .residency)
        let pageSize = systemPageSize
        guard !range.isEmpty, let base = unsafe base else {
            return MmapResidency(pageSize: pageSize, vector: [])
        }
        let first = Int(CMmapShim_alignDown(UInt64(slack + range.lowerBound), UInt64(pageSize)))
        let length = slack + range.upperBound - first
        let pages = (length + pageSize - 1) / pageSize
        var error: CInt = 0
        let vector = unsafe [UInt8](unsafeUninitializedCapacity: pages) { buffer, initialized in
            error = unsafe system_mincore(base + first, length, buffer.baseAddress.unsafelyUnwrapped)
            initialized = error == 0 ? pages : 0
        }
        guard error == 0 else {
            throw .system(.residency, errno: error, "cannot read the residency of bytes \(range)")
        }
        return MmapResidency(pageSize: pageSize, vector: vector)
    }
}

// MARK: - Remapping and growth

extension Region {
    /// Resizes the mapping to `newCount` bytes (`mremap(2)`), in place unless `mayMove`.
    /// On failure the mapping is unchanged.
    internal mutating func remap(count newCount: Int, mayMove: Bool) throws(MmapError) {
        guard newCount > 0 else {
            throw .invalid(.remap, "count \(newCount) must be positive; use unmap() to end a mapping")
        }
        guard let base = unsafe base else {
            throw .invalid(.remap, "an empty mapping has no pages to resize; map it again")
        }
        let newLength: Int
        do {
            newLength = try Region.roundedLength(slack: slack, count: newCount, alignment: alignment)
        } catch {
            throw .invalid(.remap, "count \(newCount) is too large: rounded up to the page it exceeds Int.max")
        }
        if newLength != mappedLength {
            var address: UnsafeMutableRawPointer? = nil
            let flags = mayMove ? CMmapShim_MREMAP_MAYMOVE : 0
            let error = unsafe system_mremap(base, mappedLength, newLength, flags, &address)
            guard error == 0, let address = unsafe address else {
                if error == ENOMEM && !mayMove {
                    throw MmapError(
                        .remap,
                        .outOfMemory,
                        errno: error,
                        "cannot grow \(count) bytes to \(newCount) in place: the address range after the mapping is "
                            + "in use; pass mayMove: true to let it move"
                    )
                }
                throw .system(.remap, errno: error, "cannot resize \(count) bytes to \(newCount)")
            }
            unsafe self.base = address
            mappedLength = newLength
        }
        count = newCount
    }

    /// Extends the file behind `fd` so that it covers `newCount` bytes from the mapping's
    /// offset, then resizes the mapping to match (or maps it, if it was empty).
    internal mutating func grow(
        to newCount: Int,
        fileDescriptor fd: CInt,
        allocate: Bool,
        mayMove: Bool,
        protection: CInt
    ) throws(MmapError) {
        guard newCount >= count else {
            throw .invalid(.grow, "count \(newCount) is smaller than the current \(count); use remap to shrink")
        }
        let (end, overflow) = fileOffset.addingReportingOverflow(Int64(newCount))
        guard !overflow else {
            throw .invalid(.grow, "offset \(fileOffset) + count \(newCount) overflows a 64-bit file offset")
        }
        var size: Int64 = 0
        var type: CUnsignedInt = 0
        var error = system_fstat(fd, &size, &type)
        guard error == 0 else { throw .system(.stat, errno: error, "cannot read the size of descriptor \(fd)") }
        if size < end {
            error = allocate ? system_fallocate(fd, size, end - size) : system_ftruncate(fd, end)
            guard error == 0 else {
                throw .system(.grow, errno: error, "cannot extend descriptor \(fd) from \(size) to \(end) bytes")
            }
        }
        if unsafe base == nil {
            let options = MmapOptions()
            var address: UnsafeMutableRawPointer? = nil
            let alignedOffset = Int64(CMmapShim_alignDown(UInt64(fileOffset), UInt64(alignment)))
            let slack = Int(fileOffset - alignedOffset)
            let length = try Region.roundedLength(slack: slack, count: newCount, alignment: alignment)
            let flags = flags & ~(MAP_POPULATE) | options.mapFlags
            error = unsafe system_mmap(nil, length, protection, flags, fd, alignedOffset, &address)
            guard error == 0, let address = unsafe address else {
                throw .system(.map, errno: error, "cannot map \(newCount) bytes of descriptor \(fd)")
            }
            unsafe self.base = address
            self.mappedLength = length
            self.slack = slack
            self.count = newCount
        } else {
            try remap(count: newCount, mayMove: mayMove)
        }
    }

    /// `msync(MS_SYNC)` of the whole mapping, then `fdatasync(fd)`.
    internal func flush(dataSyncing fd: CInt) throws(MmapError) {
        try flush(range: 0..<count, synchronous: true)
        let error = system_fdatasync(fd)
        guard error == 0 else { throw .system(.flush, errno: error, "fdatasync of descriptor \(fd) failed") }
    }
}
