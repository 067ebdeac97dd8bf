internal import CMmapShim
internal import Glibc

// MARK: - Advice

/// What an advice may do to the bytes of a page it covers, and so how far a range may be
/// widened to whole pages (`madvise(2)` works on whole pages; a handle's range need not).
internal enum AdviceReach {
    /// A hint that never changes contents, backing or inheritance (`MADV_RANDOM`,
    /// `MADV_WILLNEED`, `MADV_COLD`, `MADV_POPULATE_READ`, ...): the range is widened outward
    /// to whole pages, and a neighbour's part of a first or last page receives the hint too,
    /// which changes nothing it can observe.
    case hint
    /// Changes what a child after `fork(2)` or a core dump sees (`MADV_DONTFORK`,
    /// `MADV_DODUMP`, ...): only whole pages inside the range, plus the padding at the
    /// mapping's own ends (reachable through no other handle or view).
    case inheritance
    /// May discard or replace contents (`MADV_DONTNEED`, `MADV_REMOVE`, `MADV_FREE`,
    /// `MADV_WIPEONFORK`, `MADV_POPULATE_WRITE`): only whole pages inside the range; the padding
    /// at the mapping's ends only when it is nobody's data, that is, not for a shared file
    /// mapping, where it holds file bytes outside the handle.
    case destructive

    internal init(_ advice: CInt) {
        switch advice {
        case MADV_DONTFORK, MADV_DOFORK, MADV_DONTDUMP, MADV_DODUMP: self = .inheritance
        default: self = .hint
        }
    }
}

extension Region {
    /// Applies advice that never destroys contents to the pages of `range`, widened as its
    /// ``AdviceReach`` allows. Errors name bytes relative to `origin` (a view's offset).
    internal func advise(_ advice: CInt, _ name: String, range: Range<Int>, origin: Int = 0) throws(MmapError) {
        try validate(range, .advise)
        guard !range.isEmpty else { return }
        let reach = AdviceReach(advice)
        guard reach == .hint else {
            return try adviseInside(advice, name, range: range, reach: reach, origin: origin)
        }
        let (address, length) = unsafe pages(covering: range)
        try unsafe madvise(address, length, advice, name, range, origin: origin)
    }

    /// Applies advice that may destroy contents to the whole pages inside `range` only (see
    /// ``AdviceReach/destructive``). A range that contains no whole page changes nothing.
    internal func adviseDestructively(
        _ advice: CInt,
        _ name: String,
        range: Range<Int>,
        origin: Int = 0
    ) throws(MmapError) {
        try validate(range, .advise)
        guard !range.isEmpty else { return }
        try adviseInside(advice, name, range: range, reach: .destructive, origin: origin)
    }

    /// The whole pages inside `range`, plus a partial first or last page at the mapping's own
    /// ends when `reach` allows it, as offsets from `base`; nil when there are none.
    internal func pagesInside(_ range: Range<Int>, reach: AdviceReach) -> Range<Int>? {
        let endsAreOurs = reach == .inheritance || !isSharedFile
        let first = range.lowerBound == 0 && endsAreOurs ? 0 : Int(alignUp(slack + range.lowerBound))
        let end =
            range.upperBound == count && endsAreOurs
            ? mappedLength : Int(CMmapShim_alignDown(UInt64(slack + range.upperBound), UInt64(alignment)))
        return first < end ? first..<end : nil
    }

    private func adviseInside(
        _ advice: CInt,
        _ name: String,
        range: Range<Int>,
        reach: AdviceReach,
        origin: Int
    ) throws(MmapError) {
        guard let base = unsafe base, let pages = pagesInside(range, reach: reach) else { return }
        if Region.refusesLockedPages(advice) {
            try unsafe checkNotLocked(base + pages.lowerBound, pages.count, name, range, origin: origin)
        }
        try unsafe madvise(base + pages.lowerBound, pages.count, advice, name, range, origin: origin)
    }

    /// Whether the kernel refuses `advice` on locked pages (`EINVAL`), and only after it has
    /// already applied it to the kernel mappings before them: `MADV_DONTNEED`, `MADV_FREE` and
    /// `MADV_REMOVE` are not failure-atomic.
    private static func refusesLockedPages(_ advice: CInt) -> Bool {
        advice == MADV_DONTNEED || advice == MADV_FREE || advice == MADV_REMOVE
    }

    /// Throws before any page is touched when pages of `[address, address + length)` are locked.
    ///
    /// `MADV_COLD` (Linux 5.4) refuses locked pages with `EINVAL` and otherwise only deactivates
    /// pages, which changes no contents (and the caller is about to drop them anyway). Its
    /// `EINVAL` can also mean a kernel without `MADV_COLD`: only then is the kernel asked, on
    /// scratch memory, each time (a cached answer could be wrong: the scratch mapping can fail
    /// under an address-space limit, or be locked by `mlockall(MCL_FUTURE)`). Explicit huge pages
    /// are refused by `MADV_COLD` too, so they are not probed.
    private func checkNotLocked(
        _ address: UnsafeMutableRawPointer,
        _ length: Int,
        _ name: String,
        _ range: Range<Int>,
        origin: Int
    ) throws(MmapError) {
        guard options.hugePages?.explicitPageSize == nil else { return }
        let probe = unsafe system_madvise(address, length, MmapAdvice.cold.rawValue)
        guard probe != 0 else { return }
        let bytes = (range.lowerBound - origin)..<(range.upperBound - origin)
        guard probe == EINVAL else {
            throw MmapError(
                .advise,
                probe == ENOMEM || probe == EAGAIN ? .outOfMemory : .system,
                errno: probe,
                "cannot apply \(name) to bytes \(bytes): cannot check whether its pages are locked (MADV_COLD: "
                    + "\(errnoDescription(probe)), \(errnoName(probe))). Nothing was changed"
            )
        }
        switch Region.kernelKnowsCold() {
        case .some(false):
            return  // Linux before 5.4: locked pages cannot be told apart; the advice decides
        case .some(true):
            throw MmapError(
                .advise,
                .invalidArgument,
                errno: EINVAL,
                "cannot apply \(name) to bytes \(bytes): some of its pages are locked (mlock) or map device memory, "
                    + "and the kernel would drop the pages before them and then fail; unlock them first. Nothing "
                    + "was changed"
            )
        case .none:
            throw MmapError(
                .advise,
                .outOfMemory,
                errno: ENOMEM,
                "cannot apply \(name) to bytes \(bytes): cannot check whether its pages are locked (a one-page "
                    + "scratch mapping could not be made or asked). Nothing was changed"
            )
        }
    }

    /// Whether this kernel knows `MADV_COLD`, asked on one unlocked scratch page: `EINVAL` there
    /// means it does not; nil when the scratch page cannot be mapped or asked.
    private static func kernelKnowsCold() -> Bool? {
        guard let region = try? mapAnonymous(count: systemPageSize, shared: false, options: MmapOptions()),
            let base = unsafe region.base
        else { return nil }
        defer { region.unmapAfterFailure() }
        _ = unsafe system_munlock(base, region.mappedLength)  // mlockall(MCL_FUTURE) locks it
        switch unsafe system_madvise(base, region.mappedLength, MmapAdvice.cold.rawValue) {
        case 0: return true
        case EINVAL: return false
        default: return nil
        }
    }

    /// `madvise(2)` of `[address, address + length)`, pages of the mapping for the user's
    /// `range`. A populate that meets a page the file no longer backs reports the first such
    /// page in ``MmapError/faultOffset``. Errors name bytes relative to `origin`.
    internal func madvise(
        _ address: UnsafeMutableRawPointer,
        _ length: Int,
        _ advice: CInt,
        _ name: String,
        _ range: Range<Int>,
        origin: Int = 0
    ) throws(MmapError) {
        let error = unsafe system_madvise(address, length, advice)
        guard error == 0 else {
            let bytes = (range.lowerBound - origin)..<(range.upperBound - origin)
            let context =
                error == EINVAL
                ? "\(name) is not supported for this mapping by this kernel"
                : "cannot apply \(name) to bytes \(bytes)"
            var failure = MmapError.system(.advise, errno: error, context)
            if failure.code == .fault {
                let faultOffset = unsafe firstFaultingOffset(address, length, advice, range) - origin
                failure.faultOffset = faultOffset
                failure.message += "; the first page that failed holds byte \(faultOffset)"
            }
            throw failure
        }
    }

    /// The offset, in the user's bytes, of the first byte of `range` in the first page of
    /// `[address, address + length)` that `advice` (a populate) fails on.
    internal func firstFaultingOffset(
        _ address: UnsafeMutableRawPointer,
        _ length: Int,
        _ advice: CInt,
        _ range: Range<Int>
    ) -> Int {
        let page = unsafe firstFaultingPage(address, length, advice)
        let start = unsafe base.unsafelyUnwrapped + slack
        return max(range.lowerBound, unsafe page - start)
    }

    /// The address of the first page of `[address, address + length)` that `advice` (a populate)
    /// fails on, by bisection: O(log pages) further calls, each on a prefix.
    private func firstFaultingPage(
        _ address: UnsafeMutableRawPointer,
        _ length: Int,
        _ advice: CInt
    )
        -> UnsafeMutableRawPointer
    {
        let page = systemPageSize
        var good = 0  // pages known to populate
        var bad = (length + page - 1) / page  // the failing page is below this index
        while bad - good > 1 {
            let middle = (good + bad) / 2
            if unsafe system_madvise(address, middle * page, advice) == 0 { good = middle } else { bad = middle }
        }
        return unsafe address + good * page  // the prefix of `bad` = `good + 1` pages fails
    }

    private func alignUp(_ offset: Int) -> UInt64 {
        // Cannot overflow: offset <= mappedLength, which is a multiple of the alignment.
        CMmapShim_alignDown(UInt64(offset) + UInt64(alignment) - 1, UInt64(alignment))
    }

    /// Whether the kernel accepts `advice`, asked on scratch anonymous memory (private, or
    /// shared when `shared`): the 2 MiB-aligned window inside a 4 MiB no-reserve mapping, with
    /// one byte touched, because MADV_COLLAPSE refuses anything but populated, aligned
    /// huge-page ranges. The scratch mapping is unlocked first: `mlockall(MCL_FUTURE)` would lock it,
    /// and locked pages refuse some advice. Costs one mmap, one munlock, one page fault, one
    /// madvise and one munmap.
    internal static func probe(_ advice: CInt, shared: Bool) -> Bool {
        let window = 2 << 20
        guard
            let region = try? mapAnonymous(count: 2 * window, shared: shared, options: MmapOptions().noReserve()),
            let base = unsafe region.base
        else { return false }
        defer { region.unmapAfterFailure() }
        _ = unsafe system_munlock(base, region.mappedLength)  // mlockall(MCL_FUTURE) would lock it
        let address = UInt(bitPattern: base)
        let aligned = unsafe base + Int((address + UInt(window) - 1) & ~UInt(window - 1) - address)
        unsafe aligned.storeBytes(of: 1, as: UInt8.self)
        return unsafe system_madvise(aligned, window, advice) == 0
    }
}

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
        let first = Int(CMmapShim_alignDown(UInt64(slack + range.lowerBound), UInt64(pageSize)))
        let length = slack + range.upperBound - first
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
        if newLength > mappedLength && isAnonymous && flags & MAP_SHARED != 0 {
            // The kernel grows the address range but not the shared memory object behind it:
            // touching the new pages would raise SIGBUS. (Python's mmap refuses too.)
            throw MmapError(
                .remap,
                .unsupported,
                "a shared anonymous mapping cannot grow: its new pages would have no backing; map a new one "
                    + "(or a memfd, which can grow) and copy"
            )
        }
        if newLength != mappedLength {
            var address: UnsafeMutableRawPointer? = nil
            let flags = mayMove ? CMmapShim_MREMAP_MAYMOVE : 0
            let error = unsafe system_mremap(base, mappedLength, newLength, flags, &address)
            guard error == 0, let address = unsafe address else {
                throw Region.remapError(error, from: count, to: newCount, mayMove: mayMove)
            }
            unsafe self.base = address
            mappedLength = newLength
        }
        count = newCount
    }

    private static func remapError(_ error: CInt, from count: Int, to newCount: Int, mayMove: Bool) -> MmapError {
        switch error {
        case ENOMEM where !mayMove:
            return MmapError(
                .remap,
                .outOfMemory,
                errno: error,
                "cannot grow \(count) bytes to \(newCount) in place: the address range after the mapping is "
                    + "in use; pass mayMove: true to let it move"
            )
        case EFAULT:
            return MmapError(
                .remap,
                .unsupported,
                errno: error,
                "cannot grow \(count) bytes to \(newCount): advice or locking on part of the mapping split it into "
                    + "several kernel mappings, which mremap cannot resize together; apply the same advice to "
                    + "the whole mapping (or unlock it) and retry: \(errnoDescription(error)) (EFAULT)"
            )
        default:
            return .system(.remap, errno: error, "cannot resize \(count) bytes to \(newCount)")
        }
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
        guard !isAnonymous else {
            throw .invalid(
                .grow,
                "this mapping is anonymous memory: growing it cannot make its writes reach descriptor \(fd); "
                    + "map the file instead (an empty file maps as an empty mapping that can grow)"
            )
        }
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
        guard mode_t(type) == S_IFREG else {
            throw MmapError(.grow, .notMappable, errno: ENODEV, "descriptor \(fd) is not a regular file")
        }
        if size < end {
            error = allocate ? system_fallocate(fd, size, end - size) : system_ftruncate(fd, end)
            guard error == 0 else {
                throw .system(.grow, errno: error, "cannot extend descriptor \(fd) from \(size) to \(end) bytes")
            }
        }
        guard newCount > count else { return }
        guard unsafe base != nil else {
            return try mapFresh(count: newCount, fileDescriptor: fd, protection: protection)
        }
        try remap(count: newCount, mayMove: mayMove)
    }

    /// Maps `newCount` bytes of `fd` into an empty region, with the options it was made with.
    private mutating func mapFresh(count newCount: Int, fileDescriptor fd: CInt, protection: CInt) throws(MmapError) {
        let alignedOffset = Int64(CMmapShim_alignDown(UInt64(fileOffset), UInt64(alignment)))
        let slack = Int(fileOffset - alignedOffset)
        let length = try Region.roundedLength(slack: slack, count: newCount, alignment: alignment)
        var address: UnsafeMutableRawPointer? = nil
        let error = unsafe system_mmap(nil, length, protection, flags, fd, alignedOffset, &address)
        guard error == 0, let address = unsafe address else {
            throw .system(.map, errno: error, "cannot map \(newCount) bytes of descriptor \(fd)")
        }
        let grown = unsafe Region(
            base: address,
            mappedLength: length,
            slack: slack,
            count: newCount,
            alignment: alignment,
            fileOffset: fileOffset,
            flags: flags,
            options: options
        )
        try grown.finishMapping(options)  // unmaps on failure: `self` stays empty
        self = grown
    }

    /// `msync(MS_SYNC)` of the whole mapping, then `fdatasync(fd)`.
    internal func flush(dataSyncing fd: CInt) throws(MmapError) {
        try flush(range: 0..<count, synchronous: true)
        let error = system_fdatasync(fd)
        guard error == 0 else { throw .system(.dataSync, errno: error, "fdatasync of descriptor \(fd) failed") }
    }
}
