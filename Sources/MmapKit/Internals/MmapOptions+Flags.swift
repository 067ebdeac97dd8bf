internal import Glibc

// MARK: - Flag plumbing

extension MmapOptions {
    /// Every `mmap(2)` flag of a mapping made with these options: the sharing (or, for
    /// ``mapSync``, `MAP_SHARED_VALIDATE | MAP_SYNC`), `MAP_ANONYMOUS` for anonymous memory, and
    /// the flags the options add.
    ///
    /// - Precondition: ``mapSync`` only with `shared` file mappings (the constructors check it).
    internal func mapFlags(shared: Bool, anonymous: Bool) -> CInt {
        var flags: CInt
        if mapSync {
            precondition(shared && !anonymous, "MmapKit: MAP_SYNC needs a shared file mapping")
            flags = system_MAP_SHARED_VALIDATE | system_MAP_SYNC
        } else {
            flags = shared ? MAP_SHARED : MAP_PRIVATE
        }
        if anonymous { flags |= MAP_ANONYMOUS }
        if populate { flags |= MAP_POPULATE }
        if noReserve { flags |= MAP_NORESERVE }
        if stack { flags |= MAP_STACK }
        if case .explicit(let log2)? = hugePages?.kind {
            flags |= system_MAP_HUGETLB | CInt(log2) << system_MAP_HUGE_SHIFT
        }
        return flags
    }

    /// The granularity of the mapping: the huge page for explicit huge pages, else the page.
    internal var alignment: Int {
        hugePages?.explicitPageSize ?? systemPageSize
    }
}
