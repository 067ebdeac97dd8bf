#if SystemInterop
public import SystemPackage

// swift-system interop (trait `SystemInterop`): every call of a handle that takes a descriptor or
// a path also takes swift-system's `FileDescriptor` or `FilePath`. Each one forwards to the
// `CInt` or byte-path implementation, so behaviour and errors are those of the `CInt` call.

// MARK: - Constructors

extension MmapHandle {
    /// Maps part or all of an open file, given as a swift-system `FileDescriptor`.
    ///
    /// The mapping stays valid after `fileDescriptor` is closed. The offset may be any byte
    /// offset: MmapKit maps from the page below it and keeps the bytes before it out of sight.
    ///
    /// - Parameters:
    ///   - fileDescriptor: An open descriptor: readable; for a shared ``MutableMmap``, open for
    ///     reading and writing.
    ///   - offset: The first byte of the file to map; 0 by default.
    ///   - count: The number of bytes to map, or `nil` (the default) for everything from
    ///     `offset` to the end of the file.
    ///   - sharing: ``MmapSharing/shared`` (the default) or ``MmapSharing/private``.
    ///   - options: Prefaulting, huge pages, locking, advice and DAX sync.
    /// - Throws: As ``init(fileDescriptor:offset:count:sharing:options:)`` with a `CInt`:
    ///   ``MmapError/Code/invalidArgument``, ``MmapError/Code/outOfBounds``,
    ///   ``MmapError/Code/notMappable``, ``MmapError/Code/permissionDenied``, or the kernel's
    ///   error (`EBADF`, ...). Nothing stays mapped on failure.
    ///
    /// The corresponding C function is `mmap(2)`.
    @inlinable
    public init(
        fileDescriptor: FileDescriptor,
        offset: Int64 = 0,
        count: Int? = nil,
        sharing: MmapSharing = .shared,
        options: MmapOptions = MmapOptions()
    ) throws(MmapError) {
        try self.init(
            fileDescriptor: fileDescriptor.rawValue,
            offset: offset,
            count: count,
            sharing: sharing,
            options: options
        )
    }

    /// Opens the file at a swift-system `FilePath`, maps it, and closes it.
    ///
    /// The path reaches `open(2)` byte for byte, from its platform string: a name that is not
    /// valid UTF-8 opens the file it names (a `String` would have replaced its bytes). The file
    /// is opened with `O_CLOEXEC`: read-only, except for a shared ``MutableMmap``, which opens
    /// it read-write.
    ///
    /// MmapKit maps the path the `FilePath` holds, which is not always the text it was made
    /// from: swift-system ends a `FilePath` made from a `String` at the string's first NUL
    /// (`FilePath("data\0.bak")` is `data`) and drops a trailing slash (`data/` opens the file
    /// `data`, where `open(2)` of the string says `ENOTDIR`). The `String` initializers refuse
    /// a NUL (``MmapError/Code/invalidArgument``); check a `FilePath` built from untrusted text
    /// before it is built.
    ///
    /// - Parameters:
    ///   - path: The file to map.
    ///   - offset: The first byte of the file to map; 0 by default.
    ///   - count: The number of bytes to map, or `nil` for everything from `offset` on.
    ///   - sharing: ``MmapSharing/shared`` (the default) or ``MmapSharing/private``.
    ///   - options: Prefaulting, huge pages, locking, advice and DAX sync.
    /// - Throws: ``MmapError`` with operation ``MmapError/Operation/open`` when the file cannot
    ///   be opened (the kernel's error: `ENOENT`, `EACCES`, ...), otherwise as
    ///   ``init(fileDescriptor:offset:count:sharing:options:)``. Nothing stays mapped or open on
    ///   failure.
    ///
    /// The corresponding C functions are `open(2)`, `mmap(2)` and `close(2)`.
    @inlinable
    public init(
        path: FilePath,
        offset: Int64 = 0,
        count: Int? = nil,
        sharing: MmapSharing = .shared,
        options: MmapOptions = MmapOptions()
    ) throws(MmapError) {
        let writable = Access._isWritable
        // `withPlatformString` rethrows untyped errors: the typed error travels in a `Result`.
        let mapped = unsafe path.withPlatformString { platformPath in
            Result { () throws(MmapError) -> Region in
                try unsafe Region.map(
                    platformPath: platformPath,
                    offset: offset,
                    count: count,
                    writable: writable,
                    shared: sharing == .shared,
                    options: options
                )
            }
        }
        self.init(region: try mapped.get())
    }
}

// MARK: - Durability

extension MmapHandle {
    /// Writes dirty pages back (`msync(MS_SYNC)`), then `fdatasync(2)`s a swift-system
    /// `FileDescriptor`, which also makes a changed file size durable.
    ///
    /// - Parameter fileDescriptor: The descriptor of the mapped file.
    /// - Throws: The kernel's error from either call (operation ``MmapError/Operation/flush`` or
    ///   ``MmapError/Operation/dataSync``).
    ///
    /// The corresponding C functions are `msync(2)` and `fdatasync(2)`.
    @inlinable
    public func flush(dataSyncing fileDescriptor: FileDescriptor) throws(MmapError) {
        try flush(dataSyncing: fileDescriptor.rawValue)
    }
}

// MARK: - Resizing

extension MmapHandle where Access == MmapReadWrite {
    /// Grows the mapped file, given as a swift-system `FileDescriptor`, and the mapping together.
    ///
    /// As ``grow(to:fileDescriptor:allocate:mayMove:)`` with a `CInt` descriptor.
    ///
    /// - Parameters:
    ///   - count: The new count, not smaller than the current one.
    ///   - fileDescriptor: A read-write descriptor of the mapped file.
    ///   - allocate: `true` (the default) for `fallocate`, `false` for `ftruncate`.
    ///   - mayMove: Whether the mapping may move to a new address; `true` by default.
    /// - Throws: ``MmapError/Code/invalidArgument``, ``MmapError/Code/noSpace``,
    ///   ``MmapError/Code/permissionDenied`` (not open for writing),
    ///   ``MmapError/Code/unsupported``, or the kernel's error, as the `CInt` call. On failure the
    ///   mapping is unchanged.
    ///
    /// The corresponding C functions are `fallocate(2)` or `ftruncate(2)`, then `mremap(2)`.
    @inlinable
    public mutating func grow(
        to count: Int,
        fileDescriptor: FileDescriptor,
        allocate: Bool = true,
        mayMove: Bool = true
    ) throws(MmapError) {
        try grow(to: count, fileDescriptor: fileDescriptor.rawValue, allocate: allocate, mayMove: mayMove)
    }
}
#endif
