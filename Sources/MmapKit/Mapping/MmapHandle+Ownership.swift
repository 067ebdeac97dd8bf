internal import Glibc

// MARK: - Ownership

extension MmapHandle {
    /// Unmaps now, reporting the error that `deinit` would have to ignore.
    ///
    /// On success the handle is empty (``count`` is 0) and its end unmaps nothing. On failure it
    /// still owns the mapping, unchanged and usable: retry, or let it go (`deinit` tries once
    /// more, and if that fails too the address range stays mapped, unreachable; no other
    /// owner's memory is touched).
    ///
    /// Dirty pages of a shared file mapping are not lost: the kernel writes them back later.
    /// Call ``flush(range:)`` first when they must be durable now.
    ///
    /// - Throws: ``MmapError/Code/outOfMemory`` when `munmap(2)` fails with `ENOMEM`: the kernel
    ///   had merged this mapping with a neighbouring one, and splitting them would exceed
    ///   `vm.max_map_count`.
    ///
    /// The corresponding C function is `munmap(2)`.
    public mutating func unmap() throws(MmapError) {
        try region.unmap()
    }

    /// Makes the mapping readable and executable (`mprotect(PROT_READ | PROT_EXEC)`), for code
    /// written into it, and returns it as an ``Mmap`` (no longer writable).
    ///
    /// - Returns: The same pages, executable.
    /// - Throws: The kernel's error (`EACCES` when the file is on a `noexec` mount). On failure
    ///   the mapping is unmapped: nothing stays mapped and nothing is unmapped twice.
    ///
    /// The corresponding C function is `mprotect(2)`.
    public consuming func makeExecutable() throws(MmapError) -> Mmap {
        try reprotected(PROT_READ | PROT_EXEC)
    }

    /// Ends this handle and returns its mapping with `protection`, as another kind of handle.
    /// On failure the mapping is unmapped.
    private consuming func reprotected<Other: MmapAccess>(
        _ protection: CInt
    ) throws(MmapError) -> MmapHandle<Other> {
        let region = self.region
        discard self
        return MmapHandle<Other>(region: try region.reprotected(protection))
    }
}

extension MmapHandle where Access == MmapReadOnly {
    /// Makes the mapping writable (`mprotect(PROT_READ | PROT_WRITE)`) and returns it as a
    /// ``MutableMmap``.
    ///
    /// A private mapping becomes copy-on-write: writes never reach the file. A shared mapping
    /// of a descriptor opened read-only cannot become writable: the kernel refuses with
    /// `EACCES` (``MmapError/Code/permissionDenied``).
    ///
    /// - Returns: The same pages, writable.
    /// - Throws: The kernel's error. On failure the mapping is unmapped: nothing stays mapped and
    ///   nothing is unmapped twice.
    ///
    /// The corresponding C function is `mprotect(2)`.
    public consuming func makeMutable() throws(MmapError) -> MutableMmap {
        try reprotected(PROT_READ | PROT_WRITE)
    }
}

extension MmapHandle where Access == MmapReadWrite {
    /// Makes the mapping read-only (`mprotect(PROT_READ)`) and returns it as an ``Mmap``.
    ///
    /// - Returns: The same pages, read-only.
    /// - Throws: The kernel's error. On failure the mapping is unmapped: nothing stays mapped and
    ///   nothing is unmapped twice.
    ///
    /// The corresponding C function is `mprotect(2)`.
    public consuming func makeReadOnly() throws(MmapError) -> Mmap {
        try reprotected(PROT_READ)
    }
}
