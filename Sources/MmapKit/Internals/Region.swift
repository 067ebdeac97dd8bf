internal import Glibc

/// The one implementation behind every handle: a mapping's address, lengths and alignment.
///
/// `Region` is a trivial value (it owns nothing by itself), so the `~Copyable` handles that
/// hold it can `discard self` before a fallible consuming call. Ownership lives in the handles:
/// exactly one handle holds a given region, and its `deinit` (or a consuming method) calls
/// ``unmap()`` once.
///
/// Invariant: when `base` is non-nil, `[base, base + mappedLength)` is a live mapping made by
/// MmapKit, `mappedLength` is a positive multiple of `alignment`, and `offsetInPage + count <=
/// mappedLength`. When `base` is nil, `count`, `offsetInPage` and `mappedLength` are 0 and nothing is
/// mapped (an empty mapping makes no system call).
@safe
@usableFromInline
@frozen
internal struct Region: @unchecked Sendable {
    /// The address `mmap(2)` returned, aligned to `alignment`; nil for an empty mapping.
    @usableFromInline internal var base: UnsafeMutableRawPointer?
    /// The length passed to `mmap(2)` and to `munmap(2)`.
    @usableFromInline internal var mappedLength: Int
    /// Bytes between `base` and the first byte the user asked for (the offset's misalignment).
    @usableFromInline internal var offsetInPage: Int
    /// The number of bytes the user asked for.
    @usableFromInline internal var count: Int
    /// The page size of the mapping: the system page, or the explicit huge page.
    @usableFromInline internal var alignment: Int
    /// The file offset of the first byte the user asked for (0 for anonymous memory).
    @usableFromInline internal var fileOffset: Int64
    /// The `mmap(2)` flags the mapping was made with (kept so an empty mapping can grow).
    @usableFromInline internal var flags: CInt
    /// The options the mapping was made with: an empty mapping that grows applies them then.
    @usableFromInline internal var options: MmapOptions

    internal init(
        base: UnsafeMutableRawPointer?,
        mappedLength: Int,
        offsetInPage: Int,
        count: Int,
        alignment: Int,
        fileOffset: Int64,
        flags: CInt,
        options: MmapOptions
    ) {
        unsafe self.base = base
        self.mappedLength = mappedLength
        self.offsetInPage = offsetInPage
        self.count = count
        self.alignment = alignment
        self.fileOffset = fileOffset
        self.flags = flags
        self.options = options
    }

    /// An empty region: nothing mapped.
    internal static func empty(
        fileOffset: Int64,
        flags: CInt,
        alignment: Int,
        options: MmapOptions
    ) -> Region {
        unsafe Region(
            base: nil,
            mappedLength: 0,
            offsetInPage: 0,
            count: 0,
            alignment: alignment,
            fileOffset: fileOffset,
            flags: flags,
            options: options
        )
    }

    /// Whether the mapping is anonymous memory (no file behind it).
    internal var isAnonymous: Bool { flags & MAP_ANONYMOUS != 0 }

    /// Whether writes reach a file that other mappings and `read(2)` see: the bytes around the
    /// user's range in the first and last page are then somebody's data.
    internal var isSharedFile: Bool { flags & MAP_SHARED != 0 && !isAnonymous }

    /// The first byte the user asked for; nil for an empty mapping.
    ///
    /// - Precondition: the caller reads or writes only `[start, start + count)`, and only while
    ///   the region is mapped (its owning handle is alive and borrowed).
    @unsafe
    @inlinable
    internal var start: UnsafeMutableRawPointer? {
        guard let base = unsafe base else { return nil }
        return unsafe base + offsetInPage
    }

    /// The user's bytes as a buffer (empty with a nil base for an empty mapping).
    ///
    /// - Precondition: the caller uses the buffer only while the region is mapped (its owning
    ///   handle is alive and borrowed; mutably borrowed to write), and does not keep it.
    @unsafe
    @inlinable
    internal var buffer: UnsafeMutableRawBufferPointer {
        unsafe UnsafeMutableRawBufferPointer(start: start, count: count)
    }
}

// MARK: - Mapping

extension Region {
    /// Opens `path` (read-write for a writable shared mapping, else read-only), maps it as
    /// ``map(fileDescriptor:offset:count:writable:shared:options:)`` does, and closes it.
    @usableFromInline
    internal static func map(
        path: String,
        offset: Int64,
        count: Int?,
        writable: Bool,
        shared: Bool,
        options: MmapOptions
    ) throws(MmapError) -> Region {
        try withOpenFile(path, writable && shared ? O_RDWR : O_RDONLY) { fd throws(MmapError) in
            try map(
                fileDescriptor: fd,
                offset: offset,
                count: count,
                writable: writable,
                shared: shared,
                options: options
            )
        }
    }

    /// ``map(path:offset:count:writable:shared:options:)`` for a NUL-terminated path given as
    /// bytes (a swift-system `FilePath`'s platform string), so that a name that is not UTF-8
    /// opens the file it names; error messages name it with its bytes escaped.
    @unsafe
    @usableFromInline
    internal static func map(
        platformPath path: UnsafePointer<CChar>,
        offset: Int64,
        count: Int?,
        writable: Bool,
        shared: Bool,
        options: MmapOptions
    ) throws(MmapError) -> Region {
        try unsafe withOpenFile(
            platformPath: path,
            writable && shared ? O_RDWR : O_RDONLY
        ) { fd throws(MmapError) in
            try map(
                fileDescriptor: fd,
                offset: offset,
                count: count,
                writable: writable,
                shared: shared,
                options: options
            )
        }
    }

    /// Maps `count` bytes of `fd` at byte `offset` (any offset; alignment is handled here), or
    /// everything from `offset` to the end of the file when `count` is nil, readable and, when
    /// `writable`, writable: the non-generic entry of the handles' inlinable constructors.
    @usableFromInline
    internal static func map(
        fileDescriptor fd: CInt,
        offset: Int64,
        count: Int?,
        writable: Bool,
        shared: Bool,
        options: MmapOptions
    ) throws(MmapError) -> Region {
        guard offset >= 0 else { throw .invalid(.map, "offset \(offset) is negative") }
        if let count, count < 0 { throw .invalid(.map, "count \(count) is negative") }
        if options.mapSync && !shared {
            throw .invalid(.map, "the mapSync (MAP_SYNC) option needs a shared mapping")
        }

        let length: Int
        if let count {
            length = count
        } else {
            length = try inferredCount(fileDescriptor: fd, offset: offset)
        }
        if let count {
            let (_, overflow) = offset.addingReportingOverflow(Int64(count))
            if overflow { throw .invalid(.map, "offset \(offset) + count \(count) overflows a 64-bit file offset") }
        }
        let flags = options.mapFlags(shared: shared, anonymous: false)
        let alignment = options.alignment
        guard length > 0 else {
            return .empty(fileOffset: offset, flags: flags, alignment: alignment, options: options)
        }

        let region = try mapPages(
            fileDescriptor: fd,
            offset: offset,
            count: length,
            protection: writable ? PROT_READ | PROT_WRITE : PROT_READ,
            flags: flags,
            alignment: alignment,
            options: options
        )
        try region.finishMapping(options)
        return region
    }

    /// Maps `count` (> 0) bytes of `fd` from byte `offset` in pages of `alignment`, before the
    /// options that run after `mmap(2)`: the one place that maps a file.
    ///
    /// A file on hugetlbfs is mapped by the kernel in whole huge pages whatever length it is
    /// asked for, at an address and from an offset that are multiples of one; unmapping the
    /// length MmapKit asked for would then fail. So when the kernel refuses an offset (`EINVAL`),
    /// or returns a mapping whose address and offset are both multiples of the smallest huge page
    /// this kernel has (2 MiB on x86-64: by chance one small mapping in 512, and large mappings
    /// the kernel aligns for transparent huge pages), MmapKit asks whether the file lives on
    /// hugetlbfs (`fstatfs(2)`) and, if so, maps and unmaps in its huge pages. A kernel without
    /// huge pages is never asked.
    internal static func mapPages(
        fileDescriptor fd: CInt,
        offset: Int64,
        count: Int,
        protection: CInt,
        flags: CInt,
        alignment requested: Int,
        options: MmapOptions
    ) throws(MmapError) -> Region {
        let explicit = options.hugePages?.explicitPageSize != nil
        var alignment = requested
        while true {
            let alignedOffset = PageAlignment.alignDown(offset, to: Int64(alignment))
            let offsetInPage = Int(offset - alignedOffset)
            if explicit && offsetInPage != 0 {
                throw .invalid(.map, "offset \(offset) is not a multiple of the \(alignment)-byte huge page")
            }
            var mappedLength = try roundedLength(offsetInPage: offsetInPage, count: count, alignment: alignment)
            guard Int64.max - alignedOffset >= Int64(mappedLength) else {
                throw .invalid(
                    .map,
                    "offset \(offset) + count \(count), rounded up to the \(alignment)-byte page, passes the largest "
                        + "64-bit file offset"
                )
            }
            var address: UnsafeMutableRawPointer? = nil
            let error = unsafe system_mmap(nil, mappedLength, protection, flags, fd, alignedOffset, &address)
            let addressBits = UInt(bitPattern: address)
            // With explicit huge pages the kernel still maps a hugetlbfs file in the file's own
            // pages, whatever size the flags name: ask every time (explicit mappings are rare).
            let mayBeHugeTLB =
                error == EINVAL || (error == 0 && (explicit || isHugePageAligned(addressBits, alignedOffset)))
            if mayBeHugeTLB {
                let hugePage: Int?
                do {
                    hugePage = try hugeTLBPageSize(fd)
                } catch {
                    if let address = unsafe address { unsafe unmapUnknownPages(address, mappedLength) }
                    throw error
                }
                if let hugePage, hugePage != alignment {
                    if error == 0 {
                        // The kernel mapped whole pages of the file's size (it succeeded, so the
                        // offset is a multiple of one and their end fits).
                        alignment = hugePage
                        mappedLength = PageAlignment.alignUp(offsetInPage + count, to: hugePage) ?? mappedLength
                    } else if explicit {
                        throw .invalid(
                            .map,
                            "descriptor \(fd) is on hugetlbfs, whose \(hugePage >> 10) KiB pages the kernel maps "
                                + "whatever huge pages the options ask for: offset \(offset) must be a multiple of them"
                        )
                    } else if hugePage > alignment {
                        alignment = hugePage
                        continue  // map again from the huge page below the offset
                    }
                }
            }
            guard error == 0, let address = unsafe address else {
                throw hugePageError(options, error)
                    ?? .system(.map, errno: error, "cannot map \(count) bytes of descriptor \(fd) at offset \(offset)")
            }
            return unsafe Region(
                base: address,
                mappedLength: mappedLength,
                offsetInPage: offsetInPage,
                count: count,
                alignment: alignment,
                fileOffset: offset,
                flags: flags,
                options: options
            )
        }
    }

    /// Unmaps a fresh mapping of `length` bytes whose page size is unknown (the question about
    /// its file failed): with `length` first, then rounded up to each huge page size of the
    /// kernel, smallest first. A hugetlbfs mapping refuses (`EINVAL`) every length that is not a
    /// multiple of its page, and the first multiple at or past `length` is the kernel's own
    /// length, so no neighbour is ever unmapped.
    @unsafe
    private static func unmapUnknownPages(_ address: UnsafeMutableRawPointer, _ length: Int) {
        guard unsafe system_munmap(address, length) != 0 else { return }
        for size in systemHugePageSizes {
            guard let rounded = PageAlignment.alignUp(length, to: size), rounded != length else { continue }
            if unsafe system_munmap(address, rounded) == 0 { return }
        }
    }

    /// Whether a mapping at `address` of the file from `offset` could be a hugetlbfs mapping:
    /// both are multiples of the smallest huge page (false when the kernel has none).
    private static func isHugePageAligned(_ address: UInt, _ offset: Int64) -> Bool {
        let hugePage = smallestHugePageSize
        guard hugePage > 0 else { return false }
        return PageAlignment.isAligned(address, to: UInt(hugePage))
            && PageAlignment.isAligned(offset, to: Int64(hugePage))
    }

    /// Maps `count` bytes of zero-filled anonymous memory.
    internal static func mapAnonymous(
        count: Int,
        shared: Bool,
        options: MmapOptions
    ) throws(MmapError) -> Region {
        guard count >= 0 else { throw .invalid(.map, "count \(count) is negative") }
        if options.mapSync { throw .invalid(.map, "the mapSync (MAP_SYNC) option needs a shared file mapping") }
        let alignment = options.alignment
        let flags = options.mapFlags(shared: shared, anonymous: true)
        guard count > 0 else { return .empty(fileOffset: 0, flags: flags, alignment: alignment, options: options) }
        let mappedLength = try roundedLength(offsetInPage: 0, count: count, alignment: alignment)
        var address: UnsafeMutableRawPointer? = nil
        let error = unsafe system_mmap(nil, mappedLength, PROT_READ | PROT_WRITE, flags, -1, 0, &address)
        guard error == 0, let address = unsafe address else {
            throw hugePageError(options, error)
                ?? .system(.map, errno: error, "cannot map \(count) bytes of anonymous memory")
        }
        let region = unsafe Region(
            base: address,
            mappedLength: mappedLength,
            offsetInPage: 0,
            count: count,
            alignment: alignment,
            fileOffset: 0,
            flags: flags,
            options: options
        )
        try region.finishMapping(options)
        return region
    }

    /// The clear error for explicit huge pages the kernel cannot provide, or nil.
    ///
    /// With `MAP_HUGETLB` the kernel reports an empty hugetlbfs pool as `ENOMEM` and a file
    /// outside hugetlbfs as `EINVAL`; both mean "this system cannot do that", not a bug.
    private static func hugePageError(_ options: MmapOptions, _ errno: CInt) -> MmapError? {
        guard let size = options.hugePages?.explicitPageSize, errno == ENOMEM || errno == EINVAL else { return nil }
        let reason =
            errno == ENOMEM
            ? "no \(size >> 10) KiB huge pages are available (reserve some in /proc/sys/vm/nr_hugepages)"
            : "explicit \(size >> 10) KiB huge pages need anonymous memory or a file on hugetlbfs"
        return MmapError(
            .map,
            .unsupported,
            errno: errno,
            "\(reason): \(errnoDescription(errno)) (\(errnoName(errno)))"
        )
    }

    /// The count from `offset` to the end of the file behind `fd`.
    private static func inferredCount(fileDescriptor fd: CInt, offset: Int64) throws(MmapError) -> Int {
        let (size, kind) = try fileStatus(fd)
        switch kind {
        case .regular:
            break
        case .directory:
            throw MmapError(
                .map,
                .notMappable,
                errno: ENODEV,
                "descriptor \(fd) is a directory, which cannot be mapped"
            )
        case .fifo:
            throw MmapError(.map, .notMappable, errno: ENODEV, "descriptor \(fd) is a FIFO, which cannot be mapped")
        case .socket:
            throw MmapError(.map, .notMappable, errno: ENODEV, "descriptor \(fd) is a socket, which cannot be mapped")
        case .device, .other:
            // Devices report no size; mapping one needs an explicit count.
            throw .invalid(.map, "descriptor \(fd) is a device, which has no size; pass an explicit count")
        }
        guard offset <= size else {
            throw .outOfBounds(.map, "offset \(offset) is past the end of the \(size)-byte file")
        }
        return Int(size - offset)
    }

    /// `offsetInPage + count` rounded up to `alignment`, or an error when it does not fit in an `Int`.
    internal static func roundedLength(offsetInPage: Int, count: Int, alignment: Int) throws(MmapError) -> Int {
        let (sum, overflow) = offsetInPage.addingReportingOverflow(count)
        guard !overflow, let rounded = PageAlignment.alignUp(sum, to: alignment) else {
            throw .invalid(.map, "count \(count) is too large: rounded up to the page it exceeds Int.max")
        }
        return rounded
    }

    /// Applies the options that run after `mmap(2)`; on failure unmaps and throws.
    internal func finishMapping(_ options: MmapOptions) throws(MmapError) {
        do {
            if options.hugePages == .transparent {
                try adviseWhole(.hugePage)
            }
            if let advice = options.advice {
                try adviseWhole(advice)
            }
            if options.lock {
                try lock(range: 0..<count)
            }
        } catch {
            unmapDiscardingError()
            throw error
        }
    }

    private func adviseWhole(_ advice: MmapAdvice) throws(MmapError) {
        guard let base = unsafe base else { return }
        try unsafe madvise(base, mappedLength, advice.rawValue, advice.name, 0..<count)
    }
}

// MARK: - Unmapping

extension Region {
    /// Unmaps the region and leaves it empty, so that it is unmapped exactly once; on failure
    /// the region is unchanged and still owns the mapping (the caller may retry).
    ///
    /// `munmap(2)` of a whole mapping fails only with `ENOMEM`: the kernel had merged it with a
    /// neighbouring mapping of the same kind, and splitting them again would exceed
    /// `vm.max_map_count`.
    internal mutating func unmap() throws(MmapError) {
        guard let base = unsafe base else { return }
        try MmapError.check(unsafe system_munmap(base, mappedLength), .unmap, "cannot unmap \(mappedLength) bytes")
        self = .empty(fileOffset: fileOffset, flags: flags, alignment: alignment, options: options)
    }

    /// Unmaps from a `deinit` or a failure path, where there is no one to report an error to.
    /// If `munmap(2)` fails (`ENOMEM`, see ``unmap()``), the address range stays mapped and
    /// unreachable: it leaks, but no other owner's memory is touched.
    internal func unmapDiscardingError() {
        var copy = self
        _ = try? copy.unmap()
    }
}

// MARK: - Ranges

extension Region {
    /// `range`, or the whole mapping when it is nil.
    @inline(__always)
    internal func resolve(_ range: Range<Int>?) -> Range<Int> {
        range ?? 0..<count
    }

    /// Validates `range` against the user's bytes. Checks happen on integers before any pointer
    /// arithmetic.
    internal func validate(_ range: Range<Int>, _ operation: MmapError.Operation) throws(MmapError) {
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw .outOfBounds(operation, "range \(range) is outside the \(count)-byte mapping")
        }
    }

    /// The page-aligned span covering `range`: its address is aligned down to the mapping's
    /// page, its length reaches the range's end.
    ///
    /// - Precondition: the region is not empty and `range` is non-empty and validated
    ///   (``validate(_:_:)``); the caller passes the span only to calls that work on whole pages
    ///   (it reaches bytes outside `range` in the first page) while the region is mapped.
    @unsafe
    internal func pages(covering range: Range<Int>) -> (address: UnsafeMutableRawPointer, length: Int) {
        let base = unsafe base.unsafelyUnwrapped
        let first = PageAlignment.alignDown(offsetInPage + range.lowerBound, to: alignment)
        // The kernel rounds the end up to the system page itself, but not to a huge page: a
        // hugetlb mapping refuses a range that would split one (EINVAL).
        let end =
            alignment == systemPageSize
            ? offsetInPage + range.upperBound
            : min(PageAlignment.alignUp(offsetInPage + range.upperBound, to: alignment) ?? mappedLength, mappedLength)
        return (unsafe base + first, end - first)
    }
}

// MARK: - Protection

extension Region {
    /// Changes the protection of the whole mapping (`mprotect(2)`).
    internal func protect(_ protection: CInt) throws(MmapError) {
        guard let base = unsafe base else { return }
        try MmapError.check(
            unsafe system_mprotect(base, mappedLength, protection),
            .protect,
            "cannot change the protection of \(count) mapped bytes"
        )
    }

    /// Changes the protection for a consuming conversion; on failure unmaps, then throws.
    internal func reprotected(_ protection: CInt) throws(MmapError) -> Region {
        do {
            try protect(protection)
        } catch {
            unmapDiscardingError()
            throw error
        }
        return self
    }
}

// MARK: - Durability

extension Region {
    /// Writes the pages of `range` back to the file (`msync(2)`).
    internal func flush(range: Range<Int>, synchronous: Bool) throws(MmapError) {
        try validate(range, .flush)
        guard !range.isEmpty else { return }
        let (address, length) = unsafe pages(covering: range)
        try MmapError.check(
            unsafe system_msync(address, length, synchronous ? MS_SYNC : MS_ASYNC),
            .flush,
            "cannot flush bytes \(range) of the mapping"
        )
    }
}

// MARK: - Locking

extension Region {
    /// Locks the pages of `range` into memory (`mlock(2)`).
    internal func lock(range: Range<Int>) throws(MmapError) {
        try validate(range, .lock)
        guard !range.isEmpty else { return }
        let (address, length) = unsafe pages(covering: range)
        let error = unsafe system_mlock(address, length)
        guard error == 0 else {
            // mlock(2) says ENOMEM both for RLIMIT_MEMLOCK (checked before anything changes) and
            // for pages it could not fault in after marking them locked (a file mapping past the
            // end of the file). A populate tells them apart: it reports the second as EFAULT.
            // Then the range is unlocked again, so no page stays locked half-way.
            if error == ENOMEM, !isAnonymous, unsafe lastPageIsPastTheEnd(address, length) {
                _ = unsafe system_munlock(address, length)
                var failure = MmapError(
                    .lock,
                    .fault,
                    errno: error,
                    "cannot lock bytes \(range): some pages are past the end of the file (it is shorter than the "
                        + "mapping) and cannot be faulted in"
                )
                failure.faultOffset = unsafe firstFaultingOffset(
                    address,
                    length,
                    MmapAdvice.populateRead.rawValue,
                    range
                )
                throw failure
            }
            throw .system(.lock, errno: error, "cannot lock \(length) bytes")
        }
    }

    /// Whether the last page of `[address, address + length)` is past the end of the file: a
    /// populate of that one page says `EFAULT`. Pages past the end are always the mapping's last
    /// ones, so one page answers for the range without reading (or allocating) all of it.
    private func lastPageIsPastTheEnd(_ address: UnsafeMutableRawPointer, _ length: Int) -> Bool {
        let last = PageAlignment.alignDown(length - 1, to: systemPageSize)
        return unsafe system_madvise(address + last, length - last, MmapAdvice.populateRead.rawValue) == EFAULT
    }

    /// Throws ``MmapError/Code/outOfBounds`` when the mapping reaches past the end of its file,
    /// so that code with no guard (a `Data`) would raise `SIGBUS` on its last pages. One page is
    /// read in to tell (a populate of the last page); anonymous memory is never past an end.
    internal func checkNotPastTheEnd(_ operation: MmapError.Operation, _ what: String) throws(MmapError) {
        guard !isAnonymous, count > 0, unsafe base != nil else { return }
        let (address, length) = unsafe pages(covering: 0..<count)
        guard unsafe lastPageIsPastTheEnd(address, length) else { return }
        throw .outOfBounds(
            operation,
            "the \(count)-byte mapping reaches past the end of its file (the file is shorter than the mapping, or "
                + "was truncated): \(what) would raise SIGBUS on its last pages"
        )
    }

    /// Unlocks the pages of `range` (`munlock(2)`).
    internal func unlock(range: Range<Int>) throws(MmapError) {
        try validate(range, .unlock)
        guard !range.isEmpty else { return }
        let (address, length) = unsafe pages(covering: range)
        try MmapError.check(unsafe system_munlock(address, length), .unlock, "cannot unlock \(length) bytes")
    }
}
