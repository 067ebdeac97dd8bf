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
    internal func advise(_ advice: MmapAdvice, range: Range<Int>, origin: Int = 0) throws(MmapError) {
        try validate(range, .advise)
        guard !range.isEmpty else { return }
        let reach = AdviceReach(advice.rawValue)
        guard reach == .hint else {
            return try adviseInside(advice.rawValue, advice.name, range: range, reach: reach, origin: origin)
        }
        let (address, length) = unsafe pages(covering: range)
        try unsafe madvise(address, length, advice.rawValue, advice.name, range, origin: origin)
    }

    /// Applies advice that may destroy contents to the whole pages inside `range` only (see
    /// ``AdviceReach/destructive``). A range that contains no whole page changes nothing.
    internal func adviseDestructively(
        _ advice: MmapDestructiveAdvice,
        range: Range<Int>,
        origin: Int = 0
    ) throws(MmapError) {
        try validate(range, .advise)
        guard !range.isEmpty else { return }
        try adviseInside(advice.rawValue, advice.name, range: range, reach: .destructive, origin: origin)
    }

    /// The least a thread of a parallel populate is given (4 MiB): below it, starting a thread costs
    /// more than the page faults it takes off the caller, so a small range uses fewer threads.
    internal static let parallelPopulateMinimumChunk = 4 << 20

    /// Prefaults the pages of `range` for reading (`MADV_POPULATE_READ`, widened outward like any
    /// hint) or for writing (`MADV_POPULATE_WRITE`, whole pages inside the range only, as
    /// ``AdviceReach/destructive``), split over up to `threads` threads. Errors are those of the
    /// single-threaded populate, and name bytes relative to `origin`.
    ///
    /// - Precondition: `threads > 0` (checked by the public API, which traps otherwise).
    internal func populate(range: Range<Int>, forWriting: Bool, threads: Int, origin: Int = 0) throws(MmapError) {
        try validate(range, .advise)
        guard !range.isEmpty, let base = unsafe base else { return }
        if forWriting {
            let advice = MmapDestructiveAdvice.populateWrite
            guard let pages = pagesInside(range, reach: .destructive) else { return }
            try unsafe madvise(
                base + pages.lowerBound,
                pages.count,
                advice.rawValue,
                advice.name,
                range,
                origin: origin,
                threads: threads
            )
        } else {
            let advice = MmapAdvice.populateRead
            let (address, length) = unsafe pages(covering: range)
            try unsafe madvise(address, length, advice.rawValue, advice.name, range, origin: origin, threads: threads)
        }
    }

    /// The whole pages inside `range`, plus a partial first or last page at the mapping's own
    /// ends when `reach` allows it, as offsets from `base`; nil when there are none.
    internal func pagesInside(_ range: Range<Int>, reach: AdviceReach) -> Range<Int>? {
        let endsAreOurs = reach == .inheritance || !isSharedFile
        // Cannot overflow: every offset here is at most mappedLength, a multiple of the alignment.
        let first =
            range.lowerBound == 0 && endsAreOurs
            ? 0 : PageAlignment.alignUp(offsetInPage + range.lowerBound, to: alignment)!
        let end =
            range.upperBound == count && endsAreOurs
            ? mappedLength : PageAlignment.alignDown(offsetInPage + range.upperBound, to: alignment)
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
    /// under an address-space limit, or be locked by `mlockall(MCL_FUTURE)`). Huge pages (explicit,
    /// or a file on hugetlbfs) are refused by `MADV_COLD` too and are never locked by the kernel,
    /// so they are not probed.
    private func checkNotLocked(
        _ address: UnsafeMutableRawPointer,
        _ length: Int,
        _ name: String,
        _ range: Range<Int>,
        origin: Int
    ) throws(MmapError) {
        guard alignment == systemPageSize else { return }  // huge pages: never locked by the kernel
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
        defer { region.unmapDiscardingError() }
        _ = unsafe system_munlock(base, region.mappedLength)  // mlockall(MCL_FUTURE) locks it
        switch unsafe system_madvise(base, region.mappedLength, MmapAdvice.cold.rawValue) {
        case 0: return true
        case EINVAL: return false
        default: return nil
        }
    }

    /// `madvise(2)` of `[address, address + length)`, pages of the mapping for the user's
    /// `range`. A populate that meets a page the file no longer backs reports the first such
    /// page in ``MmapError/faultOffset``. Errors name bytes relative to `origin`. With `threads`
    /// above 1 the range is split over that many threads at most (a populate); the first failing
    /// page is then found single-threaded, as for one thread.
    internal func madvise(
        _ address: UnsafeMutableRawPointer,
        _ length: Int,
        _ advice: CInt,
        _ name: String,
        _ range: Range<Int>,
        origin: Int = 0,
        threads: Int = 1
    ) throws(MmapError) {
        let error =
            threads == 1
            ? unsafe system_madvise(address, length, advice)
            : unsafe system_madviseParallel(
                address,
                length,
                advice,
                threads: threads,
                alignment: alignment,
                minimumChunk: Region.parallelPopulateMinimumChunk
            )
        guard error == 0 else {
            let bytes = (range.lowerBound - origin)..<(range.upperBound - origin)
            let context =
                error == EINVAL
                ? "\(name) is not supported for this mapping by this kernel"
                : "cannot apply \(name) to bytes \(bytes)"
            var failure = MmapError.system(.advise, errno: error, context)
            if failure.code == .fault {
                // A populate met a page that access would fault on. Found again by bisection; if
                // the whole range populates now (a file truncated and grown back meanwhile), the
                // call did what it was asked: no page is left to fault.
                guard let first = unsafe firstFaultingOffset(address, length, advice, range) else { return }
                let faultOffset = first - origin
                if error == EFAULT && isAnonymous && (alignment > systemPageSize || flags & MAP_HUGETLB != 0) {
                    // Explicit huge pages have no end to be truncated past: the pool had no page
                    // to give (a noReserve mapping reserved none), which is running out of memory.
                    failure.code = .outOfMemory
                    failure.message +=
                        "; no huge page could back byte \(faultOffset): the pool has none free "
                        + "(a noReserve mapping reserved none when it was made)"
                } else {
                    let causes =
                        error != EFAULT
                        ? ""
                        : isAnonymous
                            ? ": anonymous memory the kernel will not fault in there (a guard page, MADV_GUARD_INSTALL)"
                            : ": the file no longer backs it (it is shorter than the mapping), its file system could "
                                + "not provide the page (a full tmpfs, an exhausted hugetlbfs pool), or it is a guard "
                                + "page (MADV_GUARD_INSTALL)"
                    failure.faultOffset = faultOffset
                    failure.message += "; the first page that failed holds byte \(faultOffset)" + causes
                }
            }
            throw failure
        }
    }

    /// The offset, in the user's bytes, of the first byte of `range` in the first page of
    /// `[address, address + length)` that `advice` (a populate) fails on; nil when the whole
    /// range populates now.
    internal func firstFaultingOffset(
        _ address: UnsafeMutableRawPointer,
        _ length: Int,
        _ advice: CInt,
        _ range: Range<Int>
    ) -> Int? {
        guard let page = unsafe firstFaultingPage(address, length, advice) else { return nil }
        let start = unsafe base.unsafelyUnwrapped + offsetInPage
        return max(range.lowerBound, unsafe page - start)
    }

    /// The address of the first page of `[address, address + length)` that `advice` (a populate)
    /// fails on, by bisection: O(log pages) further calls, each on a prefix. The whole range is
    /// tried first, so the page found is one that failed; nil when the whole range populates.
    private func firstFaultingPage(
        _ address: UnsafeMutableRawPointer,
        _ length: Int,
        _ advice: CInt
    )
        -> UnsafeMutableRawPointer?
    {
        guard unsafe system_madvise(address, length, advice) != 0 else { return nil }
        let page = systemPageSize
        var good = 0  // pages known to populate
        var bad = (length + page - 1) / page  // the failing page is below this index
        while bad - good > 1 {
            let middle = (good + bad) / 2
            if unsafe system_madvise(address, middle * page, advice) == 0 { good = middle } else { bad = middle }
        }
        return unsafe address + good * page  // the prefix of `bad` = `good + 1` pages fails
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
        defer { region.unmapDiscardingError() }
        _ = unsafe system_munlock(base, region.mappedLength)  // mlockall(MCL_FUTURE) would lock it
        // Cannot overflow: the mapping ends below the top of the address space.
        let address = UInt(bitPattern: base)
        let aligned = unsafe base + Int(PageAlignment.alignUp(address, to: UInt(window))! - address)
        unsafe aligned.storeBytes(of: 1, as: UInt8.self)
        return unsafe system_madvise(aligned, window, advice) == 0
    }
}
