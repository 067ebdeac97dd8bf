#if FoundationInterop
public import Foundation

// Foundation interop (trait `FoundationInterop`) for growable files.

extension MmapGrowableFile {
    /// Maps the file behind a Foundation `FileHandle` (its whole current size) at the start of
    /// a new reservation of `capacity` bytes.
    ///
    /// As ``init(fileDescriptor:capacity:)`` with the handle's descriptor.
    ///
    /// - Parameters:
    ///   - fileHandle: A handle open for reading and writing (`FileHandle(forUpdatingAtPath:)`);
    ///     MmapKit keeps a duplicate of its descriptor, so the caller may close it.
    ///   - capacity: The largest size the file can grow to through this value.
    /// - Throws: ``MmapError/Code/invalidArgument``, ``MmapError/Code/permissionDenied``,
    ///   ``MmapError/Code/notMappable``, ``MmapError/Code/unsupported``, or the kernel's errors,
    ///   as the `CInt` call. Nothing stays mapped or open on failure.
    ///
    /// The corresponding C functions are `fstat(2)`, `mmap(2)` and `dup(2)`.
    public init(fileHandle: FileHandle, capacity: Int) throws(MmapError) {
        try self.init(fileDescriptor: fileHandle.fileDescriptor, capacity: capacity)
    }
}
#endif
