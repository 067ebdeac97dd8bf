internal import Glibc

/// Advice to the kernel about a range of a mapping that never destroys its contents
/// (`madvise(2)`).
///
/// Pass it to `advise(_:range:)` on any handle or view. Advice that can discard or replace the
/// contents (`MADV_DONTNEED`, `MADV_FREE`, ...) is a different type,
/// ``MmapDestructiveAdvice``, accepted only by `mutating` methods of writable handles.
///
/// An advice the running kernel does not know fails with ``MmapError/Code/unsupported``; it is
/// never silently ignored. ``isSupported`` asks without side effects.
///
/// ## What an advice does to a neighbour's page
///
/// `madvise(2)` works on whole pages; a handle's range, or a view's, may start or end inside a
/// page that a neighbouring view also covers. Each advice is applied by what it does there:
/// - Hints (``normal``, ``random``, ``sequential``, ``willNeed``, ``mergeable``,
///   ``unmergeable``, ``hugePage``, ``noHugePage``, ``cold``, ``pageout``, ``collapse``,
///   ``populateRead``) change no contents and nothing a neighbour can observe: the range is
///   widened outward to whole pages.
/// - Inheritance advice (``dontFork``, ``doFork``, ``dontDump``, ``doDump``) changes what a
///   child after `fork(2)` or a core dump sees: it covers only the whole pages inside the range,
///   plus the mapping's own padding, so a neighbouring view's bytes are never hidden from a
///   child. Bytes of the range in a page shared with a neighbour stay inherited.
public struct MmapAdvice: Hashable, Sendable, CustomStringConvertible {
    /// The `MADV_*` value passed to `madvise(2)`.
    public let rawValue: CInt

    // The name is derived (`adviceName`), not stored: the type stays trivially copyable.
    internal init(_ rawValue: CInt) {
        self.rawValue = rawValue
    }

    /// The constant's name, e.g. `"MADV_SEQUENTIAL"`.
    public var name: String { adviceName(rawValue) }

    /// The constant's name, e.g. `"MADV_SEQUENTIAL"`.
    public var description: String { name }

    /// No special treatment (`MADV_NORMAL`).
    public static let normal = MmapAdvice(MADV_NORMAL)
    /// Expect random access: read ahead less (`MADV_RANDOM`).
    public static let random = MmapAdvice(MADV_RANDOM)
    /// Expect sequential access: read ahead aggressively, free behind (`MADV_SEQUENTIAL`).
    public static let sequential = MmapAdvice(MADV_SEQUENTIAL)
    /// Expect access soon: start reading ahead now (`MADV_WILLNEED`).
    public static let willNeed = MmapAdvice(MADV_WILLNEED)
    /// Do not make the range available to a child after `fork(2)` (`MADV_DONTFORK`, Linux 2.6.16).
    public static let dontFork = MmapAdvice(MADV_DONTFORK)
    /// Undo ``dontFork`` (`MADV_DOFORK`).
    public static let doFork = MmapAdvice(MADV_DOFORK)
    /// Let KSM merge identical pages (`MADV_MERGEABLE`; needs `CONFIG_KSM`).
    public static let mergeable = MmapAdvice(MADV_MERGEABLE)
    /// Undo ``mergeable`` (`MADV_UNMERGEABLE`).
    public static let unmergeable = MmapAdvice(MADV_UNMERGEABLE)
    /// Back the range with transparent huge pages (`MADV_HUGEPAGE`, Linux 2.6.38).
    public static let hugePage = MmapAdvice(MADV_HUGEPAGE)
    /// Never back the range with transparent huge pages (`MADV_NOHUGEPAGE`).
    public static let noHugePage = MmapAdvice(MADV_NOHUGEPAGE)
    /// Leave the range out of core dumps (`MADV_DONTDUMP`, Linux 3.4).
    public static let dontDump = MmapAdvice(MADV_DONTDUMP)
    /// Undo ``dontDump`` (`MADV_DODUMP`).
    public static let doDump = MmapAdvice(MADV_DODUMP)
    /// Deactivate the range: reclaim it first under memory pressure (`MADV_COLD`, Linux 5.4).
    public static let cold = MmapAdvice(20)
    /// Reclaim the range now; clean file pages are dropped, dirty ones written back first
    /// (`MADV_PAGEOUT`, Linux 5.4). The contents stay readable.
    public static let pageout = MmapAdvice(21)
    /// Collapse the range into transparent huge pages synchronously (`MADV_COLLAPSE`, Linux 6.1).
    public static let collapse = MmapAdvice(25)
    /// Prefault the range for reading, reporting errors instead of raising `SIGBUS`
    /// (`MADV_POPULATE_READ`, Linux 5.14). Prefer `populate(range:)`, which picks it for you.
    public static let populateRead = MmapAdvice(22)

    /// Every non-destructive advice MmapKit knows, in `MADV_*` order.
    public static let all: [MmapAdvice] = [
        .normal, .random, .sequential, .willNeed, .dontFork, .doFork, .mergeable, .unmergeable, .hugePage,
        .noHugePage, .dontDump, .doDump, .cold, .pageout, .collapse, .populateRead,
    ]
}

/// Advice that may discard or replace the contents of a range (`madvise(2)`).
///
/// Accepted only by `mutating` methods of writable handles (`MutableMmap`, `MutableMmapView`),
/// so the compiler forbids it while a span of the mapping is alive.
public struct MmapDestructiveAdvice: Hashable, Sendable, CustomStringConvertible {
    /// The `MADV_*` value passed to `madvise(2)`.
    public let rawValue: CInt

    internal init(_ rawValue: CInt) {
        self.rawValue = rawValue
    }

    /// The constant's name, e.g. `"MADV_DONTNEED"`.
    public var name: String { adviceName(rawValue) }

    /// The constant's name, e.g. `"MADV_DONTNEED"`.
    public var description: String { name }

    /// Drop the pages now (`MADV_DONTNEED`): private and anonymous pages read back as zeros,
    /// shared file pages are re-read from the file.
    public static let dontNeed = MmapDestructiveAdvice(MADV_DONTNEED)
    /// Let the kernel free the pages lazily (`MADV_FREE`, Linux 4.5; private anonymous only):
    /// until they are written again they may read back as zeros or as the old data.
    public static let free = MmapDestructiveAdvice(8)
    /// Free the pages and the backing store (`MADV_REMOVE`, shared file mappings on filesystems
    /// that can punch holes, and shared anonymous memory): reads back as zeros.
    public static let remove = MmapDestructiveAdvice(MADV_REMOVE)
    /// A child after `fork(2)` sees zeros in the range (`MADV_WIPEONFORK`, Linux 4.14; private
    /// anonymous only).
    public static let wipeOnFork = MmapDestructiveAdvice(18)
    /// Undo ``wipeOnFork`` (`MADV_KEEPONFORK`).
    public static let keepOnFork = MmapDestructiveAdvice(19)
    /// Prefault the range for writing (`MADV_POPULATE_WRITE`, Linux 5.14): private file pages
    /// are copied (breaking copy-on-write sharing), which is why it counts as destructive.
    ///
    /// On a shared file mapping the pages are marked dirty without a byte changing. The page
    /// cache tracks dirtiness per folio, and a large folio (ext4, XFS, tmpfs on recent kernels)
    /// spans several pages: a neighbouring page of the same folio, outside the range, may be
    /// written back too, with its unchanged contents.
    public static let populateWrite = MmapDestructiveAdvice(23)

    /// Every destructive advice MmapKit knows.
    public static let all: [MmapDestructiveAdvice] = [
        .dontNeed, .free, .remove, .wipeOnFork, .keepOnFork, .populateWrite,
    ]
}

/// The `MADV_*` name of an advice value MmapKit knows.
internal func adviceName(_ rawValue: CInt) -> String {
    switch rawValue {
    case MADV_NORMAL: "MADV_NORMAL"
    case MADV_RANDOM: "MADV_RANDOM"
    case MADV_SEQUENTIAL: "MADV_SEQUENTIAL"
    case MADV_WILLNEED: "MADV_WILLNEED"
    case MADV_DONTNEED: "MADV_DONTNEED"
    case 8: "MADV_FREE"
    case MADV_REMOVE: "MADV_REMOVE"
    case MADV_DONTFORK: "MADV_DONTFORK"
    case MADV_DOFORK: "MADV_DOFORK"
    case MADV_MERGEABLE: "MADV_MERGEABLE"
    case MADV_UNMERGEABLE: "MADV_UNMERGEABLE"
    case MADV_HUGEPAGE: "MADV_HUGEPAGE"
    case MADV_NOHUGEPAGE: "MADV_NOHUGEPAGE"
    case MADV_DONTDUMP: "MADV_DONTDUMP"
    case MADV_DODUMP: "MADV_DODUMP"
    case 18: "MADV_WIPEONFORK"
    case 19: "MADV_KEEPONFORK"
    case 20: "MADV_COLD"
    case 21: "MADV_PAGEOUT"
    case 22: "MADV_POPULATE_READ"
    case 23: "MADV_POPULATE_WRITE"
    case 25: "MADV_COLLAPSE"
    default: "MADV_\(rawValue)"
    }
}
