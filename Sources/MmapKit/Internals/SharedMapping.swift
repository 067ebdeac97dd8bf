/// The owner of a mapping that has been shared into views: it unmaps the region in `deinit`,
/// which runs when the last view releases it, on whichever thread that happens.
///
/// This is the one heap allocation of `share()`; `split` and `restrict` only retain it.
@usableFromInline
internal final class SharedMapping: @unchecked Sendable {
    // Sendable: `region` is immutable after init, and the views built on it cover disjoint
    // byte ranges, so no two threads can write the same byte through them.
    internal let region: Region

    internal init(_ region: Region) {
        self.region = region
    }

    deinit {
        region.unmapDiscardingError()
    }
}
