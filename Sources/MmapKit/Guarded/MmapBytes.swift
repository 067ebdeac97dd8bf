/// The bytes of a mapping, a view, or a newer handle whose pages a file backs: what ``Mmap``,
/// ``MutableMmap``, ``MmapView``, ``MutableMmapView``, ``MmapGrowableFile``,
/// ``MmapReservation`` and ``MmapMirroredRing`` have in common.
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

    /// Not API: the check a guarded access of `length` bytes at `offset` passes before anything
    /// is read or written. The default accepts exactly the ranges inside `0..<count`; a handle
    /// with bytes that cannot be touched (a reservation's uncommitted pages) narrows it.
    ///
    /// - Throws: ``MmapError/Code/outOfBounds`` when the access may not be made.
    func _checkGuardedAccess(offset: Int, length: Int) throws(MmapError)
}

/// Writable bytes of a mapping, a view, or a newer handle: ``MutableMmap``,
/// ``MutableMmapView``, ``MmapGrowableFile``, ``MmapReservation`` and ``MmapMirroredRing``.
public protocol MutableMmapBytes: MmapBytes, ~Copyable {
    /// Calls `body` with a mutable pointer to the bytes, valid only during the call.
    mutating func withUnsafeMutableBytes<R: ~Copyable, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R
}

extension MmapBytes where Self: ~Copyable {
    /// Not API: accepts the accesses inside `0..<count` (see the requirement).
    ///
    /// - Throws: ``MmapError/Code/outOfBounds`` for an access outside `0..<count`.
    @inlinable
    public func _checkGuardedAccess(offset: Int, length: Int) throws(MmapError) {
        try _checkGuardedBounds(offset, length, count)
    }
}

extension MmapGrowableFile: MutableMmapBytes {}
extension MmapReservation: MutableMmapBytes {}
extension MmapMirroredRing: MutableMmapBytes {}
