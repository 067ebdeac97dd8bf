#if FoundationInterop
public import Foundation
internal import Glibc

// Foundation interop (trait `FoundationInterop`): a `Data` that owns a mapping without copying
// it. The handle is consumed, its region handed to the `Data`'s deallocator, which unmaps it once.

extension Data {
    /// Wraps a writable mapping in a `Data` without copying it: the `Data` owns the mapping and
    /// unmaps it, once, when its last copy is released.
    ///
    /// The `Data`'s bytes are the mapping's bytes, from the first byte the mapping was asked for
    /// (its offset need not be page-aligned). `Data` is copy-on-write: a copy that is mutated gets
    /// its own memory, but a `Data` that holds the only reference mutates its bytes in place, so
    /// its writes reach the mapping, and, for a shared file mapping, the file. Map with
    /// ``MmapSharing/private`` (or anonymous memory) when they must not.
    ///
    /// The mapping is the `Data`'s capacity. A `Data` that shrinks (`count = n`,
    /// `removeLast`, a `replaceSubrange` with fewer bytes) keeps its bytes, and the whole mapping,
    /// in place; one that then grows again within the mapping's length stays in the mapping too,
    /// and `Data` zero-fills the bytes it adds there (in a shared file mapping, in the file). Only
    /// a `Data` that grows past the mapping's length (or reserves more capacity) moves its bytes
    /// to the heap, and the mapping is unmapped then. Like any `Data`, one of 14 bytes or fewer is
    /// copied into inline storage at once: the mapping is then unmapped right away. An empty
    /// mapping gives an empty `Data`.
    ///
    /// A `Data` has no guard against `SIGBUS`: a file mapping with a page wholly past the end
    /// of its file is refused here, but a file truncated later, by any process, still kills the
    /// reader of a page past its new end. The check is per page, as `SIGBUS` is: bytes past the
    /// end of the file inside its last page read as zeros, as in any mapping, and writes to them
    /// never reach the file (a 100-byte file mapped with `count: 200` is accepted). Wrap files that nobody truncates while the `Data` lives, or use
    /// the guarded API of ``MmapBytes`` instead.
    ///
    /// <!-- snippet-traits: FoundationInterop -->
    /// ```swift
    /// import Foundation
    ///
    /// var scratch = try Data(mapping: MutableMmap(anonymous: 1 << 20))  // zero-filled, private
    /// scratch[0] = 1  // written in place, in the mapping
    /// ```
    ///
    /// - Parameter mapping: The mapping, consumed: the `Data` is its only owner.
    /// - Throws: ``MmapError/Code/outOfBounds`` (operation ``MmapError/Operation/access``) for a
    ///   file mapping with a page wholly past the end of its file (an explicit `count` beyond
    ///   the file's last page, or a file truncated since it was mapped): the mapping is
    ///   unmapped, nothing stays mapped.
    ///
    /// The corresponding C functions are `madvise(2)` (`MADV_POPULATE_READ` of the last page, to
    /// tell whether the file still backs it), then `munmap(2)` from the `Data`'s deallocator.
    public init(mapping: consuming MutableMmap) throws(MmapError) {
        // `mapping` ends on the throw: its deinit unmaps it.
        try mapping.region.checkNotPastTheEnd(.access, "a Data over it")
        let region = mapping.relinquishedRegion()
        guard region.count > 0, let start = unsafe region.start else {
            region.unmapDiscardingError()  // nothing mapped, or no byte the user asked for
            self.init()
            return
        }
        // `region` is a trivial copy; the deallocator is its only owner from here on, and Data
        // calls it exactly once (when the last copy ends, when it grows, or at once when inline).
        unsafe self.init(
            bytesNoCopy: start,
            count: region.count,
            deallocator: .custom { _, _ in region.unmapDiscardingError() }
        )
    }

    /// Wraps a private read-only mapping in a `Data` without copying its bytes: its pages are
    /// made copy-on-write (`mprotect(PROT_READ | PROT_WRITE)` of a private mapping: writes never
    /// reach the file, and no page is copied until one is written), and the `Data` owns the
    /// mapping and unmaps it, once, when its last copy is released.
    ///
    /// `Data` mutates its bytes in place when it holds the only reference, so it cannot rest on
    /// read-only pages (Foundation's own mapped `Data` crashes there); a private mapping makes
    /// that mutation safe and private. A shared read-only mapping cannot: making it writable
    /// would send the `Data`'s writes to the file, or fail for a descriptor opened read-only.
    /// Map with `sharing: .private`, or pass a ``MutableMmap`` to `Data(mapping:)`.
    ///
    /// <!-- snippet-traits: FoundationInterop -->
    /// ```swift
    /// import Foundation
    ///
    /// let data = try Data(mapping: Mmap(path: "/var/db/segment", sharing: .private))
    /// let header = data.prefix(16)  // no copy of the file's pages
    /// ```
    ///
    /// - Parameter mapping: The mapping, consumed: the `Data` is its only owner.
    /// - Throws: ``MmapError/Code/invalidArgument`` (operation ``MmapError/Operation/protect``)
    ///   for a shared mapping; the kernel's error from `mprotect(2)` (`ENOMEM`);
    ///   ``MmapError/Code/outOfBounds`` (operation ``MmapError/Operation/access``) for a mapping
    ///   with a page wholly past the end of its file. On failure the mapping is unmapped: nothing stays
    ///   mapped and nothing is unmapped twice.
    ///
    /// The corresponding C functions are `mprotect(2)`, then `munmap(2)` from the `Data`'s
    /// deallocator.
    public init(mapping: consuming Mmap) throws(MmapError) {
        guard mapping.region.flags & MAP_SHARED == 0 else {
            // `mapping` ends here: its deinit unmaps it.
            throw .invalid(
                .protect,
                "a shared read-only mapping cannot back a Data, which writes its bytes in place when it holds "
                    + "the only reference: map with sharing: .private (copy-on-write), or pass a MutableMmap"
            )
        }
        try self.init(mapping: try mapping.makeMutable())
    }
}

extension MmapHandle {
    /// Ends this handle without unmapping and returns its region, which the caller now owns
    /// (and must unmap exactly once).
    internal consuming func relinquishedRegion() -> Region {
        let region = self.region
        discard self
        return region
    }
}
#endif
