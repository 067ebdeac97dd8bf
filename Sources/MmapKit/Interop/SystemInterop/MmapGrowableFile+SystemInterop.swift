#if SystemInterop
public import SystemPackage

// swift-system interop (trait `SystemInterop`) for growable files.

extension MmapGrowableFile {
    /// Maps the file behind a swift-system `FileDescriptor` (its whole current size) at the
    /// start of a new reservation of `capacity` bytes.
    ///
    /// As ``init(fileDescriptor:capacity:)`` with a `CInt` descriptor.
    ///
    /// - Parameters:
    ///   - fileDescriptor: A descriptor open for reading and writing; MmapKit keeps a duplicate,
    ///     so the caller may close it.
    ///   - capacity: The largest size the file can grow to through this value.
    /// - Throws: ``MmapError/Code/invalidArgument``, ``MmapError/Code/permissionDenied``,
    ///   ``MmapError/Code/notMappable``, ``MmapError/Code/unsupported``, or the kernel's errors,
    ///   as the `CInt` call. Nothing stays mapped or open on failure.
    ///
    /// The corresponding C functions are `fstat(2)`, `mmap(2)` and `dup(2)`.
    @inlinable
    public init(fileDescriptor: FileDescriptor, capacity: Int) throws(MmapError) {
        try self.init(fileDescriptor: fileDescriptor.rawValue, capacity: capacity)
    }
}
#endif
