// MARK: - Support probes

extension MmapAdvice {
    /// Whether the running kernel accepts this advice, asked by applying it to a scratch page
    /// of private anonymous memory (one mmap, madvise and munmap; nothing else is touched).
    ///
    /// Some advice is accepted only for some mappings (``mergeable`` needs KSM); a `true` here
    /// means the kernel knows the advice.
    public var isSupported: Bool { Region.probe(rawValue, shared: false) }
}

extension MmapDestructiveAdvice {
    /// Whether the running kernel accepts this advice, asked on a scratch page of anonymous
    /// memory (shared for ``remove``, which needs shared memory; private otherwise).
    public var isSupported: Bool { Region.probe(rawValue, shared: self == .remove) }
}
