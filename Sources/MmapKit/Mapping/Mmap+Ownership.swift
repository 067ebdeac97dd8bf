internal import Glibc

// MARK: - Ownership

extension Mmap {
    /// Unmaps now, reporting the error that `deinit` would have to ignore.
    ///
    /// On success the handle is empty (``count`` is 0) and its end unmaps nothing. On failure it
    /// still owns the mapping, unchanged and usable: retry, or let it go (`deinit` tries once
    /// more, and if that fails too the address range stays mapped, unreachable; no other
    /// owner's memory is touched).
    ///
    /// - Throws: ``MmapError/Code/outOfMemory`` when `munmap(2)` fails with `ENOMEM`: the kernel
    ///   had merged this mapping with a neighbouring one, and splitting them would exceed
    ///   `vm.max_map_count`.
    ///
    /// The corresponding C function is `munmap(2)`.
    public mutating func unmap() throws(MmapError) {
        try region.unmap()
    }

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
        let region = self.region
        discard self
        return MutableMmap(region: try region.reprotected(PROT_READ | PROT_WRITE))
    }

    /// Makes the mapping readable and executable (`mprotect(PROT_READ | PROT_EXEC)`).
    ///
    /// - Returns: The same pages, executable.
    /// - Throws: The kernel's error (`EACCES` when the file is on a `noexec` mount). On failure
    ///   the mapping is unmapped.
    ///
    /// The corresponding C function is `mprotect(2)`.
    public consuming func makeExecutable() throws(MmapError) -> Mmap {
        let region = self.region
        discard self
        return Mmap(region: try region.reprotected(PROT_READ | PROT_EXEC))
    }
}
