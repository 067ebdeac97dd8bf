internal import Glibc

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
            newLength = try Region.roundedLength(offsetInPage: offsetInPage, count: newCount, alignment: alignment)
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
        try checkCanGrow(to: newLength, .remap)
        if newLength != mappedLength {
            var address: UnsafeMutableRawPointer? = nil
            let flags = mayMove ? system_MREMAP_MAYMOVE : 0
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

    /// Refuses growth past the mapped length of a huge-page mapping (explicit, or a file on
    /// hugetlbfs): Linux's `mremap(2)` moves or shrinks those but never grows them (`EINVAL`).
    private func checkCanGrow(to newLength: Int, _ operation: MmapError.Operation) throws(MmapError) {
        guard newLength > mappedLength, alignment != systemPageSize else { return }
        throw MmapError(
            operation,
            .unsupported,
            "a mapping of \(alignment >> 10) KiB huge pages cannot grow past its \(mappedLength) mapped bytes: "
                + "Linux's mremap does not grow huge-page mappings; map the larger range again"
        )
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
        if unsafe base != nil, let newLength = PageAlignment.alignUp(offsetInPage + newCount, to: alignment) {
            try checkCanGrow(to: newLength, .grow)  // before the file is extended
        }
        try extendFile(fd, to: end, allocate: allocate)
        guard newCount > count else { return }
        guard unsafe base != nil else {
            return try mapFresh(count: newCount, fileDescriptor: fd, protection: protection)
        }
        try remap(count: newCount, mayMove: mayMove)
    }

    /// Maps `newCount` bytes of `fd` into an empty region, with the options it was made with.
    private mutating func mapFresh(count newCount: Int, fileDescriptor fd: CInt, protection: CInt) throws(MmapError) {
        let grown = try Region.mapPages(
            fileDescriptor: fd,
            offset: fileOffset,
            count: newCount,
            protection: protection,
            flags: flags,
            alignment: alignment,
            options: options
        )
        try grown.finishMapping(options)  // unmaps on failure: `self` stays empty
        self = grown
    }

    /// `msync(MS_SYNC)` of the whole mapping, then `fdatasync(fd)`.
    internal func flush(dataSyncing fd: CInt) throws(MmapError) {
        try flush(range: 0..<count, synchronous: true)
        try dataSync(fd)
    }
}
