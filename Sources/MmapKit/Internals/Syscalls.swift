internal import CMmapShim

// The syscall chokepoint: the only Swift code that calls the shim's wrappers. Each function
// returns the shim's result (0 or the errno captured in C); callers turn it into an
// `MmapError` through `MmapError.system`, so the errno policy stays in one file.

/// The system page size, cached by the shim.
@inline(__always)
internal var systemPageSize: Int { Int(CMmapShim_pageSize()) }

@inline(__always)
internal func system_mmap(
    _ address: UnsafeMutableRawPointer?,
    _ length: Int,
    _ protection: CInt,
    _ flags: CInt,
    _ fd: CInt,
    _ offset: Int64,
    _ result: inout UnsafeMutableRawPointer?
) -> CInt {
    unsafe CMmapShim_mmap(address, length, protection, flags, fd, offset, &result)
}

@inline(__always)
internal func system_munmap(_ address: UnsafeMutableRawPointer, _ length: Int) -> CInt {
    unsafe CMmapShim_munmap(address, length)
}

@inline(__always)
internal func system_mmapIntoHole(
    _ address: UnsafeMutableRawPointer,
    _ length: Int,
    _ protection: CInt,
    _ flags: CInt,
    _ fd: CInt,
    _ offset: Int64
) -> CInt {
    unsafe CMmapShim_mmapIntoHole(address, length, protection, flags, fd, offset)
}

/// Counts one mapping fewer (see `CMmapShim_countUnmap`).
@inline(__always)
internal func system_countUnmap() {
    CMmapShim_countUnmap()
}

@inline(__always)
internal func system_munmapPart(_ address: UnsafeMutableRawPointer, _ length: Int) -> CInt {
    unsafe CMmapShim_munmapPart(address, length)
}

@inline(__always)
internal func system_mprotect(_ address: UnsafeMutableRawPointer, _ length: Int, _ protection: CInt) -> CInt {
    unsafe CMmapShim_mprotect(address, length, protection)
}

@inline(__always)
internal func system_msync(_ address: UnsafeMutableRawPointer, _ length: Int, _ flags: CInt) -> CInt {
    unsafe CMmapShim_msync(address, length, flags)
}

@inline(__always)
internal func system_madvise(_ address: UnsafeMutableRawPointer, _ length: Int, _ advice: CInt) -> CInt {
    unsafe CMmapShim_madvise(address, length, advice)
}

/// `madvise(2)` of `[address, address + length)` split over up to `threads` threads in chunks of
/// whole `alignment`-byte pages, none smaller than `minimumChunk` (see
/// `CMmapShim_madviseParallel`): 0, or the errno of the lowest failing chunk.
@inline(__always)
internal func system_madviseParallel(
    _ address: UnsafeMutableRawPointer,
    _ length: Int,
    _ advice: CInt,
    threads: Int,
    alignment: Int,
    minimumChunk: Int
) -> CInt {
    unsafe CMmapShim_madviseParallel(
        address,
        length,
        advice,
        CInt(clamping: threads),
        alignment,
        minimumChunk
    )
}

@inline(__always)
internal func system_mlock(_ address: UnsafeMutableRawPointer, _ length: Int) -> CInt {
    unsafe CMmapShim_mlock(address, length)
}

@inline(__always)
internal func system_munlock(_ address: UnsafeMutableRawPointer, _ length: Int) -> CInt {
    unsafe CMmapShim_munlock(address, length)
}

@inline(__always)
internal func system_mremap(
    _ address: UnsafeMutableRawPointer,
    _ oldLength: Int,
    _ newLength: Int,
    _ flags: CInt,
    _ result: inout UnsafeMutableRawPointer?
) -> CInt {
    unsafe CMmapShim_mremap(address, oldLength, newLength, flags, &result)
}

@inline(__always)
internal func system_mincore(
    _ address: UnsafeMutableRawPointer,
    _ length: Int,
    _ vector: UnsafeMutablePointer<UInt8>
) -> CInt {
    unsafe CMmapShim_mincore(address, length, vector)
}

/// `open(2)` of a NUL-terminated path, passed byte for byte: a `String` through `withCString`
/// (which reads a native string in place; the implicit String-to-pointer conversion would copy
/// it to the heap), a swift-system `FilePath` through its platform string (a name that is not
/// UTF-8 reaches the kernel unchanged).
@unsafe
@inline(__always)
internal func system_open(_ path: UnsafePointer<CChar>, _ flags: CInt, _ mode: CInt, _ fd: inout CInt) -> CInt {
    unsafe CMmapShim_open(path, flags, mode, &fd)
}

@inline(__always)
internal func system_close(_ fd: CInt) -> CInt {
    CMmapShim_close(fd)
}

@inline(__always)
internal func system_fstat(_ fd: CInt, _ size: inout Int64, _ type: inout CUnsignedInt) -> CInt {
    unsafe CMmapShim_fstat(fd, &size, &type)
}

@inline(__always)
internal func system_ftruncate(_ fd: CInt, _ length: Int64) -> CInt {
    CMmapShim_ftruncate(fd, length)
}

@inline(__always)
internal func system_fallocate(_ fd: CInt, _ offset: Int64, _ length: Int64) -> CInt {
    CMmapShim_fallocate(fd, offset, length)
}

@inline(__always)
internal func system_fdatasync(_ fd: CInt) -> CInt {
    CMmapShim_fdatasync(fd)
}

@inline(__always)
internal func system_mmapInPlace(
    _ address: UnsafeMutableRawPointer,
    _ length: Int,
    _ protection: CInt,
    _ flags: CInt,
    _ fd: CInt,
    _ offset: Int64
) -> CInt {
    unsafe CMmapShim_mmapInPlace(address, length, protection, flags, fd, offset)
}

@inline(__always)
internal func system_memfd_create(_ name: String, _ flags: CUnsignedInt, _ fd: inout CInt) -> CInt {
    unsafe name.withCString { unsafe CMmapShim_memfd_create($0, flags, &fd) }
}

@inline(__always)
internal func system_addSeals(_ fd: CInt, _ seals: CInt) -> CInt {
    CMmapShim_addSeals(fd, seals)
}

@inline(__always)
internal func system_dupCloexec(_ fd: CInt, _ duplicate: inout CInt) -> CInt {
    unsafe CMmapShim_dupCloexec(fd, &duplicate)
}

// MARK: - Constants Swift cannot import from Glibc

/// `MREMAP_MAYMOVE` (`_GNU_SOURCE`).
internal var system_MREMAP_MAYMOVE: CInt { CMmapShim_MREMAP_MAYMOVE }
/// `MAP_HUGETLB`.
internal var system_MAP_HUGETLB: CInt { CMmapShim_MAP_HUGETLB }
/// `MAP_HUGE_SHIFT`: the shift of the huge page size's log2 in the `mmap(2)` flags.
internal var system_MAP_HUGE_SHIFT: CInt { CMmapShim_MAP_HUGE_SHIFT }
/// `MAP_SHARED_VALIDATE`.
internal var system_MAP_SHARED_VALIDATE: CInt { CMmapShim_MAP_SHARED_VALIDATE }
/// `MAP_SYNC`.
internal var system_MAP_SYNC: CInt { CMmapShim_MAP_SYNC }
/// `MFD_CLOEXEC`.
internal var system_MFD_CLOEXEC: CInt { CMmapShim_MFD_CLOEXEC }
/// `MFD_ALLOW_SEALING`.
internal var system_MFD_ALLOW_SEALING: CInt { CMmapShim_MFD_ALLOW_SEALING }
/// `F_SEAL_SHRINK`.
internal var system_F_SEAL_SHRINK: CInt { CMmapShim_F_SEAL_SHRINK }
/// `F_SEAL_GROW`.
internal var system_F_SEAL_GROW: CInt { CMmapShim_F_SEAL_GROW }

// MARK: - Guarded access (SIGBUS turned into EFAULT; see guard.c)

/// `memcpy(destination, source, length)` with the SIGBUS guard armed on
/// `[armed, armed + armedLength)`: 0, `EFAULT` with `fault` set, or the install error.
@inline(__always)
internal func system_guardedCopy(
    _ destination: UnsafeMutableRawPointer?,
    _ source: UnsafeRawPointer?,
    _ length: Int,
    _ armed: UnsafeRawPointer?,
    _ armedLength: Int,
    _ fault: inout UnsafeMutableRawPointer?
) -> CInt {
    unsafe CMmapShim_guardedCopy(destination, source, length, armed, armedLength, &fault)
}

/// Loads `size` bytes at `source` into `out` (one access for aligned 1, 2, 4 or 8 bytes), guarded.
@inline(__always)
internal func system_guardedLoad(
    _ source: UnsafeRawPointer,
    _ size: Int,
    _ out: UnsafeMutableRawPointer,
    _ fault: inout UnsafeMutableRawPointer?
) -> CInt {
    unsafe CMmapShim_guardedLoad(source, size, out, &fault)
}

/// Stores `size` bytes of `value` at `destination` (one access for aligned 1, 2, 4 or 8 bytes),
/// guarded.
@inline(__always)
internal func system_guardedStore(
    _ destination: UnsafeMutableRawPointer,
    _ size: Int,
    _ value: UnsafeRawPointer?,
    _ fault: inout UnsafeMutableRawPointer?
) -> CInt {
    unsafe CMmapShim_guardedStore(destination, size, value, &fault)
}

/// Reads one byte of every page of `[address, address + length)`, guarded.
@inline(__always)
internal func system_guardedPrefault(
    _ address: UnsafeRawPointer,
    _ length: Int,
    _ fault: inout UnsafeMutableRawPointer?
) -> CInt {
    unsafe CMmapShim_guardedPrefault(address, length, &fault)
}

@inline(__always)
internal func system_hugeTLBPageSize(_ fd: CInt, _ pageSize: inout Int64) -> CInt {
    unsafe CMmapShim_hugeTLBPageSize(fd, &pageSize)
}

@inline(__always)
internal func system_accessMode(_ fd: CInt, _ mode: inout CInt) -> CInt {
    unsafe CMmapShim_accessMode(fd, &mode)
}

/// The huge page sizes of this kernel, smallest first (empty without huge pages); see
/// `CMmapShim_hugePageSizes`.
internal var systemHugePageSizes: [Int] {
    let mask = CMmapShim_hugePageSizes()
    return (0..<64).compactMap { bit in mask & (1 << UInt64(bit)) != 0 ? 1 << bit : nil }
}

/// The smallest huge page size of this kernel, or 0 when it has none.
@inline(__always)
internal var smallestHugePageSize: Int {
    let mask = CMmapShim_hugePageSizes()
    return mask == 0 ? 0 : Int(truncatingIfNeeded: mask & (~mask &+ 1))
}
