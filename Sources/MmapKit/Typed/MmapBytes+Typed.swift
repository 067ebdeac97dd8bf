// Typed loads and stores on every handle (`Mmap`, `MutableMmap`, the views, `MmapGrowableFile`,
// `MmapReservation`, `MmapMirroredRing`), written once on ``MmapBytes``. They check the access as
// the guarded calls do (a reservation: committed bytes only), then read or write in place, with
// no `SIGBUS` guard. A value-returning method takes no span of the caller's binding, so
// `map.load(...)` on a local `let map` costs no heap allocation, where a span of it may (see
// "Known compiler limitations" in the README).

extension MmapBytes where Self: ~Copyable {
    /// Returns the value of type `T` stored at `offset`, in the byte order `byteOrder`.
    ///
    /// The bytes need no alignment. An access outside the handle's bytes (or, for a reservation,
    /// outside its committed memory) is a programmer error and traps with a message, as an
    /// out-of-range index does; to read a file another process may truncate, use
    /// ``guardedLoad(fromByteOffset:as:)``, which turns the `SIGBUS` of a lost page into an error.
    ///
    /// ```swift
    /// func magic(of path: String) throws(MmapError) -> UInt32 {
    ///     let map = try Mmap(path: path)
    ///     return map.load(fromByteOffset: 0, as: UInt32.self, byteOrder: .bigEndian)
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - offset: The byte offset of the value; `offset + MemoryLayout<T>.size` must not pass
    ///     ``count``.
    ///   - type: The type to load: a fixed-width integer or floating-point type.
    ///   - byteOrder: The order of the value's bytes in the file or memory.
    /// - Returns: The value.
    @inlinable
    @inline(__always)
    public func load<T: MmapScalar>(fromByteOffset offset: Int = 0, as type: T.Type, byteOrder: MmapByteOrder) -> T {
        _mmapCheckScalar(T.self)
        _mmapCheckTypedAccess(self, offset, MemoryLayout<T>.size)
        let value = unsafe withUnsafeBytes { unsafe $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        return byteOrder == .native ? value : value._mmapByteSwapped
    }
}

extension MutableMmapBytes where Self: ~Copyable {
    /// Stores `value` at `offset`, in the byte order `byteOrder`.
    ///
    /// The bytes need no alignment. An access outside the handle's bytes (or, for a reservation,
    /// outside its committed memory) is a programmer error and traps with a message; to write a
    /// file another process may truncate, use ``MutableMmapBytes/guardedStore(_:toByteOffset:)``.
    ///
    /// - Parameters:
    ///   - value: The value to store.
    ///   - offset: The byte offset to store it at; `offset + MemoryLayout<T>.size` must not pass
    ///     ``MmapBytes/count``.
    ///   - byteOrder: The order to store the value's bytes in.
    @inlinable
    @inline(__always)
    public mutating func store<T: MmapScalar>(_ value: T, toByteOffset offset: Int = 0, byteOrder: MmapByteOrder) {
        _mmapCheckScalar(T.self)
        _mmapCheckTypedAccess(self, offset, MemoryLayout<T>.size)
        let ordered = byteOrder == .native ? value : value._mmapByteSwapped
        unsafe withUnsafeMutableBytes { unsafe $0.storeBytes(of: ordered, toByteOffset: offset, as: T.self) }
    }
}

/// Traps unless `handle` may be accessed for `length` bytes at `offset` (its guarded check).
@inlinable
@inline(__always)
internal func _mmapCheckTypedAccess<H: MmapBytes & ~Copyable>(_ handle: borrowing H, _ offset: Int, _ length: Int) {
    do {
        try handle._checkGuardedAccess(offset: offset, length: length)
    } catch {
        _mmapTypedAccessRefused(error)
    }
}

/// Traps with the reason a typed access was refused.
@usableFromInline
@inline(never)
internal func _mmapTypedAccessRefused(_ error: MmapError) -> Never {
    fatalError("MmapKit: \(error)")
}
