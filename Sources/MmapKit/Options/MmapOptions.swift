/// How a mapping is made: prefaulting, reservation, huge pages, locking and initial advice.
///
/// The counterpart of memmap2's `MmapOptions`; the offset and count are arguments of the
/// constructors instead. Build one by chaining:
///
/// ```swift
/// let map = try Mmap(path: "/var/db/segment", options: .init().populate().advice(.sequential))
/// ```
public struct MmapOptions: Hashable, Sendable {
    /// Prefault the whole mapping when it is made (`MAP_POPULATE`): page-cache pages of a file
    /// are mapped, anonymous pages are allocated. Errors while prefaulting are not reported by
    /// the kernel; use `populate(range:)` where they must be.
    public var populate: Bool = false
    /// Do not reserve swap space for the mapping (`MAP_NORESERVE`).
    public var noReserve: Bool = false
    /// Mark the mapping as a thread stack (`MAP_STACK`).
    public var stack: Bool = false
    /// Huge pages for the mapping, or `nil` for ordinary pages.
    public var hugePages: HugePages? = nil
    /// Lock the mapping into memory after it is made (`mlock(2)`); failing to lock fails the
    /// constructor with ``MmapError/Code/lockLimit`` and leaves nothing mapped.
    public var lock: Bool = false
    /// Advice applied with `madvise(2)` right after mapping, or `nil`.
    public var advice: MmapAdvice? = nil
    /// Map with `MAP_SHARED_VALIDATE | MAP_SYNC` for persistent memory (DAX): every write fault
    /// that needs filesystem metadata is made durable before it returns. Only for shared file
    /// mappings of a DAX file; elsewhere the kernel refuses with `EOPNOTSUPP`, reported as
    /// ``MmapError/Code/unsupported``. Linux 4.15 or later.
    ///
    /// This is a property of the mapping, not a flush: dirty pages still need
    /// `flush()` (`msync(2)`) or CPU cache flushes to be durable.
    public var mapSync: Bool = false

    /// The former name of ``mapSync``, which read like flushing.
    @available(*, deprecated, renamed: "mapSync")
    public var sync: Bool {
        get { mapSync }
        set { mapSync = newValue }
    }

    /// Options with every feature off: a plain mapping with ordinary pages.
    public init() {}

    /// These options with ``populate`` set.
    public func populate(_ enabled: Bool = true) -> MmapOptions { with { $0.populate = enabled } }
    /// These options with ``noReserve`` set.
    public func noReserve(_ enabled: Bool = true) -> MmapOptions { with { $0.noReserve = enabled } }
    /// These options with ``stack`` set.
    public func stack(_ enabled: Bool = true) -> MmapOptions { with { $0.stack = enabled } }
    /// These options with ``hugePages`` set.
    public func hugePages(_ kind: HugePages?) -> MmapOptions { with { $0.hugePages = kind } }
    /// These options with ``lock`` set.
    public func lock(_ enabled: Bool = true) -> MmapOptions { with { $0.lock = enabled } }
    /// These options with ``advice`` set.
    public func advice(_ advice: MmapAdvice?) -> MmapOptions { with { $0.advice = advice } }
    /// These options with ``mapSync`` set (`MAP_SYNC`; see the property).
    public func mapSync(_ enabled: Bool = true) -> MmapOptions { with { $0.mapSync = enabled } }
    /// The former name of ``mapSync(_:)``, which read like flushing.
    @available(*, deprecated, renamed: "mapSync(_:)")
    public func sync(_ enabled: Bool = true) -> MmapOptions { mapSync(enabled) }

    private func with(_ change: (inout MmapOptions) -> Void) -> MmapOptions {
        var copy = self
        change(&copy)
        return copy
    }
}

// MARK: - Huge pages

extension MmapOptions {
    /// Which kind of huge pages to use.
    public struct HugePages: Hashable, Sendable {
        internal enum Kind: Hashable, Sendable {
            case transparent
            case explicit(log2: Int)
        }
        internal let kind: Kind

        /// Transparent huge pages: the mapping is advised with `MADV_HUGEPAGE`, and the kernel
        /// backs it with huge pages where it can (when THP is in `madvise` or `always` mode).
        /// Lengths stay rounded to the ordinary page.
        public static let transparent = HugePages(kind: .transparent)

        /// Explicit huge pages from the hugetlbfs pool (`MAP_HUGETLB`) of 2 MiB.
        public static let explicit2MiB = HugePages(kind: .explicit(log2: 21))

        /// Explicit huge pages from the hugetlbfs pool (`MAP_HUGETLB`) of 1 GiB.
        public static let explicit1GiB = HugePages(kind: .explicit(log2: 30))

        /// Explicit huge pages of `1 << log2` bytes (`MAP_HUGETLB | log2 << MAP_HUGE_SHIFT`).
        ///
        /// The length of the mapping is rounded up to the huge page, offsets must be multiples
        /// of it, and the same rounded length is used to unmap. When no huge pages of that size
        /// are reserved (`/proc/sys/vm/nr_hugepages`), mapping fails with
        /// ``MmapError/Code/unsupported``.
        /// - Parameter log2: The base-2 logarithm of the page size, from 16 (64 KiB) to 34 (16 GiB).
        /// - Throws: ``MmapError/Code/invalidArgument`` for a `log2` outside 16...34.
        public static func explicit(log2: Int) throws(MmapError) -> HugePages {
            guard (16...34).contains(log2) else {
                throw .invalid(.map, "huge page log2 \(log2) is outside 16...34 (64 KiB to 16 GiB pages)")
            }
            return HugePages(kind: .explicit(log2: log2))
        }

        /// The page size of an explicit kind, or `nil` for transparent huge pages.
        public var explicitPageSize: Int? {
            if case .explicit(let log2) = kind { return 1 << log2 }
            return nil
        }
    }
}
