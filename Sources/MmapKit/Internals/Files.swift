internal import Glibc

// Files and descriptors behind mappings: the one fstat classification, the one file-growth
// path, and the descriptors MmapKit keeps or makes (duplicates, sealed memfds).

/// What a descriptor refers to, as far as mapping is concerned (the `S_IFMT` bits of `fstat(2)`).
internal enum FileKind {
    case regular
    case directory
    case fifo
    case socket
    /// A character or block device: it may be mappable, but reports no size.
    case device
    /// Anything else `fstat(2)` may report.
    case other

    internal init(mode: mode_t) {
        switch mode {
        case S_IFREG: self = .regular
        case S_IFDIR: self = .directory
        case S_IFIFO: self = .fifo
        case S_IFSOCK: self = .socket
        case S_IFCHR, S_IFBLK: self = .device
        default: self = .other
        }
    }
}

/// The size and kind of the file behind `fd` (`fstat(2)`).
///
/// - Throws: The kernel's error, with operation ``MmapError/Operation/stat``.
internal func fileStatus(_ fd: CInt) throws(MmapError) -> (size: Int64, kind: FileKind) {
    var size: Int64 = 0
    var type: CUnsignedInt = 0
    try MmapError.check(system_fstat(fd, &size, &type), .stat, "cannot read the size and type of descriptor \(fd)")
    return (size, FileKind(mode: mode_t(type)))
}

/// The huge page size of the file behind `fd` when it lives on hugetlbfs, else nil.
///
/// The kernel maps (and unmaps) a hugetlbfs file only in whole huge pages, from offsets that are
/// multiples of one, whatever length it is asked for: MmapKit must then round and unmap with that
/// size, or `munmap(2)` of the length it asked for fails with `EINVAL`.
///
/// - Throws: The kernel's error, with operation ``MmapError/Operation/stat``.
internal func hugeTLBPageSize(_ fd: CInt) throws(MmapError) -> Int? {
    var pageSize: Int64 = 0
    try MmapError.check(system_hugeTLBPageSize(fd, &pageSize), .stat, "cannot read the file system of descriptor \(fd)")
    return pageSize > 0 ? Int(pageSize) : nil
}

/// Whether `fd` is open for reading and writing (`O_RDWR`).
///
/// - Throws: The kernel's error, with operation ``MmapError/Operation/stat``.
internal func isOpenForReadingAndWriting(_ fd: CInt) throws(MmapError) -> Bool {
    var mode: CInt = 0
    try MmapError.check(system_accessMode(fd, &mode), .stat, "cannot read the access mode of descriptor \(fd)")
    return mode == O_RDWR
}

/// Extends the regular file behind `fd` to at least `end` bytes: `fallocate(2)` from its
/// current size when `allocate` (disk blocks reserved, so later writes cannot meet a full disk),
/// else `ftruncate(2)` (sparse). A file already that long is left as it is.
///
/// - Throws: ``MmapError/Code/notMappable`` (operation ``MmapError/Operation/grow``) when `fd`
///   is not a regular file; the kernel's errors (`ENOSPC`, `EFBIG`).
internal func extendFile(_ fd: CInt, to end: Int64, allocate: Bool) throws(MmapError) {
    let (size, kind) = try fileStatus(fd)
    guard kind == .regular else {
        throw MmapError(.grow, .notMappable, errno: ENODEV, "descriptor \(fd) is not a regular file")
    }
    guard size < end else { return }
    let error = allocate ? system_fallocate(fd, size, end - size) : system_ftruncate(fd, end)
    // Both say EBADF (ftruncate may say EINVAL) for a descriptor open for reading only: say so.
    if error == EBADF || error == EINVAL {
        var mode: CInt = 0
        if system_accessMode(fd, &mode) == 0, mode == O_RDONLY {
            throw MmapError(
                .grow,
                .permissionDenied,
                errno: error,
                "descriptor \(fd) is not open for writing (it is open for reading only, or with O_PATH): "
                    + "growing the file needs one open for reading and writing (O_RDWR)"
            )
        }
    }
    try MmapError.check(error, .grow, "cannot extend descriptor \(fd) from \(size) to \(end) bytes")
}

/// `fdatasync(2)` of `fd`, after its pages were flushed.
///
/// - Throws: The kernel's error (`EIO`, `ENOSPC`), with operation ``MmapError/Operation/dataSync``.
internal func dataSync(_ fd: CInt) throws(MmapError) {
    try MmapError.check(system_fdatasync(fd), .dataSync, "fdatasync of descriptor \(fd) failed")
}

/// A duplicate of `fd` with `FD_CLOEXEC`, which the caller owns.
///
/// - Throws: The kernel's error (`EMFILE`), with operation ``MmapError/Operation/duplicate``.
internal func duplicateDescriptor(_ fd: CInt) throws(MmapError) -> CInt {
    var duplicate: CInt = -1
    try MmapError.check(system_dupCloexec(fd, &duplicate), .duplicate, "cannot duplicate descriptor \(fd)")
    return duplicate
}

/// Closes a descriptor MmapKit owns. Errors are ignored: on Linux the descriptor is released
/// even when `close(2)` fails, and nothing a mapping holds depends on it.
internal func closeDescriptor(_ fd: CInt) {
    _ = system_close(fd)
}

/// Runs `body` with a memfd of `count` bytes sealed against shrinking and growing
/// (`F_SEAL_SHRINK | F_SEAL_GROW`: no holder of the descriptor can make its pages vanish), then
/// closes it; mappings made by `body` keep the memory alive.
///
/// - Throws: The kernel's errors from `memfd_create`, `ftruncate` or `fcntl(F_ADD_SEALS)`
///   (operation ``MmapError/Operation/memfd``), or what `body` throws. Nothing stays open.
internal func withSealedMemoryFile<R>(
    count: Int,
    _ body: (CInt) throws(MmapError) -> R
) throws(MmapError) -> R {
    var fd: CInt = -1
    let flags = CUnsignedInt(system_MFD_CLOEXEC | system_MFD_ALLOW_SEALING)
    try MmapError.check(system_memfd_create("mmapkit-ring", flags, &fd), .memfd, "memfd_create failed")
    defer { closeDescriptor(fd) }
    try MmapError.check(system_ftruncate(fd, Int64(count)), .memfd, "cannot size the memfd to \(count) bytes")
    try MmapError.check(system_addSeals(fd, system_F_SEAL_SHRINK | system_F_SEAL_GROW), .memfd, "cannot seal the memfd")
    return try body(fd)
}
