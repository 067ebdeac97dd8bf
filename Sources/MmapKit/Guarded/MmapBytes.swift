/// The bytes of a mapping or a view: what ``Mmap``, ``MutableMmap``, ``MmapView`` and
/// ``MutableMmapView`` have in common.
///
/// Operations written once for every handle, such as the guarded reads, live in extensions of
/// this protocol.
public protocol MmapBytes: ~Copyable {
    /// The number of bytes.
    var count: Int { get }

    /// Calls `body` with a pointer to the bytes, valid only during the call.
    func withUnsafeBytes<R: ~Copyable, E: Error>(
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R
}

/// Writable bytes of a mapping or a view: ``MutableMmap`` and ``MutableMmapView``.
public protocol MutableMmapBytes: MmapBytes, ~Copyable {
    /// Calls `body` with a mutable pointer to the bytes, valid only during the call.
    mutating func withUnsafeMutableBytes<R: ~Copyable, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R
}
