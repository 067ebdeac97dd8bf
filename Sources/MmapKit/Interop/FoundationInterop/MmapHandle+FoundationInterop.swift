#if FoundationInterop
public import Foundation

// Foundation interop (trait `FoundationInterop`): every call of a handle that takes a
// descriptor also takes a `FileHandle`. Each one forwards its `fileDescriptor` to the `CInt`
// call; the handle is a borrowed argument, alive (and its descriptor open) until the call returns.

// MARK: - Constructors

extension MmapHandle {
    /// Maps part or all of the file behind a Foundation `FileHandle`.
    ///
    /// The mapping stays valid after the handle is closed or released. The offset may be any
    /// byte offset: MmapKit maps from the page below it and keeps the bytes before it out of
    /// sight.
    ///
    /// - Parameters:
    ///   - fileHandle: An open handle: readable (`FileHandle(forReadingAtPath:)`); for a shared
    ///     ``MutableMmap``, open for reading and writing (`FileHandle(forUpdatingAtPath:)`).
    ///   - offset: The first byte of the file to map; 0 by default.
    ///   - count: The number of bytes to map, or `nil` (the default) for everything from
    ///     `offset` to the end of the file.
    ///   - sharing: ``MmapSharing/shared`` (the default) or ``MmapSharing/private``.
    ///   - options: Prefaulting, huge pages, locking, advice and DAX sync.
    /// - Throws: As ``init(fileDescriptor:offset:count:sharing:options:)`` with the handle's
    ///   descriptor: ``MmapError/Code/invalidArgument``, ``MmapError/Code/outOfBounds``,
    ///   ``MmapError/Code/notMappable``, ``MmapError/Code/permissionDenied`` (a shared
    ///   ``MutableMmap`` of a handle opened for reading only), or the kernel's error (`EBADF`
    ///   for a closed handle). Nothing stays mapped on failure.
    ///
    /// The corresponding C function is `mmap(2)`.
    public init(
        fileHandle: FileHandle,
        offset: Int64 = 0,
        count: Int? = nil,
        sharing: MmapSharing = .shared,
        options: MmapOptions = MmapOptions()
    ) throws(MmapError) {
        try self.init(
            fileDescriptor: fileHandle.fileDescriptor,
            offset: offset,
            count: count,
            sharing: sharing,
            options: options
        )
    }
}

// MARK: - Durability

extension MmapHandle {
    /// Writes dirty pages back (`msync(MS_SYNC)`), then `fdatasync(2)`s the file behind a
    /// Foundation `FileHandle`, which also makes a changed file size durable.
    ///
    /// - Parameter fileHandle: A handle of the mapped file.
    /// - Throws: The kernel's error from either call (operation ``MmapError/Operation/flush`` or
    ///   ``MmapError/Operation/dataSync``).
    ///
    /// The corresponding C functions are `msync(2)` and `fdatasync(2)`.
    public func flush(dataSyncing fileHandle: FileHandle) throws(MmapError) {
        try flush(dataSyncing: fileHandle.fileDescriptor)
    }
}

// MARK: - Resizing

extension MmapHandle where Access == MmapReadWrite {
    /// Grows the file behind a Foundation `FileHandle` and the mapping together.
    ///
    /// As ``grow(to:fileDescriptor:allocate:mayMove:)`` with the handle's descriptor.
    ///
    /// - Parameters:
    ///   - count: The new count, not smaller than the current one.
    ///   - fileHandle: A handle of the mapped file, open for reading and writing.
    ///   - allocate: `true` (the default) for `fallocate`, `false` for `ftruncate`.
    ///   - mayMove: Whether the mapping may move to a new address; `true` by default.
    /// - Throws: ``MmapError/Code/invalidArgument``, ``MmapError/Code/noSpace``,
    ///   ``MmapError/Code/permissionDenied`` (not open for writing),
    ///   ``MmapError/Code/unsupported``, or the kernel's error, as the `CInt` call. On failure the
    ///   mapping is unchanged.
    ///
    /// The corresponding C functions are `fallocate(2)` or `ftruncate(2)`, then `mremap(2)`.
    public mutating func grow(
        to count: Int,
        fileHandle: FileHandle,
        allocate: Bool = true,
        mayMove: Bool = true
    ) throws(MmapError) {
        try grow(to: count, fileDescriptor: fileHandle.fileDescriptor, allocate: allocate, mayMove: mayMove)
    }
}
#endif
