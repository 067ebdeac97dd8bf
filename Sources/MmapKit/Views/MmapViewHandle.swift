/// A read-only window on a mapping shared by reference counting: split it into disjoint pieces
/// and send them to other threads; the mapping is unmapped when the last view ends.
///
/// Made by ``MmapHandle/share()`` of an ``Mmap``. It offers no way to write. The successor of
/// memmap's `MmapViewSync`, without its aliasing `clone`. Its operations are documented on
/// ``MmapViewHandle``.
public typealias MmapView = MmapViewHandle<MmapReadOnly>

/// A writable window on a mapping shared by reference counting: split it into disjoint pieces,
/// write each from its own thread, flush each on its own; the mapping is unmapped when the last
/// view ends.
///
/// Made by ``MmapHandle/share()`` of a ``MutableMmap``. The successor of memmap's
/// `MmapViewSync`. Its operations are documented on ``MmapViewHandle``.
public typealias MutableMmapView = MmapViewHandle<MmapReadWrite>

/// A window on a mapping shared by reference counting: ``MmapView`` (read-only) or
/// ``MutableMmapView`` (read-write), by its ``MmapAccess`` parameter.
///
/// Views never overlap (no API creates an aliasing copy), so writes through different views
/// cannot race; that is what makes the type `Sendable`. ``split(at:)`` and ``restrict(to:)``
/// allocate nothing; the mapping is unmapped when the last view derived from it ends, on
/// whichever thread that happens.
@safe
@frozen
public struct MmapViewHandle<Access: MmapAccess>: ~Copyable, Sendable {
    // Invariant: see ViewStorage; the pages are written through this type only when `Access`
    // is `MmapReadWrite`.
    @usableFromInline internal var storage: ViewStorage

    internal init(storage: ViewStorage) {
        self.storage = storage
    }
}

extension MmapHandle {
    /// Turns this mapping into a view that can be split and shared across threads.
    ///
    /// Costs one heap allocation (the shared owner); splitting costs none.
    ///
    /// - Returns: A view of the whole mapping, of the same kind (read-only or read-write). The
    ///   mapping is unmapped when the last view derived from it ends.
    public consuming func share() -> MmapViewHandle<Access> {
        let region = self.region
        discard self
        return MmapViewHandle(storage: ViewStorage(owning: region))
    }
}
