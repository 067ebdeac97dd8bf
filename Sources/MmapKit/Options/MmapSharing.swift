/// Whether writes through a mapping reach the file and other mappings of it.
public enum MmapSharing: Hashable, Sendable {
    /// `MAP_SHARED`: writes go to the page cache and, through it, to the file; other processes
    /// mapping the same file see them. A shared anonymous mapping is inherited by `fork(2)`
    /// children as the same memory, which makes it usable for IPC.
    case shared
    /// `MAP_PRIVATE`: copy-on-write. Writes stay in this process and never reach the file, and
    /// a read-only descriptor is enough even for a writable mapping.
    case `private`
}
