// Safe typed access to mapped bytes: loads of fixed-width values at any byte offset, in an
// explicit byte order, and typed spans (`Span<UInt64>` and friends) over aligned bytes. The
// standard library of Swift 6.3 offers only `unsafeLoad` on `RawSpan` (a type may have invalid
// bit patterns) and `storeBytes` on `MutableRawSpan`; restricting the type to ``MmapScalar``
// makes both directions safe. Every access is bounds-checked, and the checks are written so
// that the optimizer can remove them where the index is provably in range (`span[i % count]`).

// MARK: - Loads

extension RawSpan {
    /// Returns the value of type `T` stored at `offset`, in the byte order `byteOrder`.
    ///
    /// The bytes need no alignment. A range outside the span is a programmer error and traps, as
    /// an out-of-range index of `Span` does; to read a file that may have been truncated under
    /// the mapping without risking `SIGBUS`, use ``MmapBytes/guardedLoad(fromByteOffset:as:)``.
    ///
    /// ```swift
    /// func recordLength(in map: borrowing Mmap, at offset: Int) -> UInt32 {
    ///     map.bytes.load(fromByteOffset: offset, as: UInt32.self, byteOrder: .littleEndian)
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - offset: The byte offset of the value; `offset + MemoryLayout<T>.size` must not pass
    ///     the end of the span.
    ///   - type: The type to load: a fixed-width integer or floating-point type.
    ///   - byteOrder: The order of the value's bytes in memory.
    /// - Returns: The value.
    @inlinable
    @inline(__always)
    public func load<T: MmapScalar>(fromByteOffset offset: Int = 0, as type: T.Type, byteOrder: MmapByteOrder) -> T {
        _mmapCheckScalar(T.self)
        _mmapCheckAccess(offset, MemoryLayout<T>.size, byteCount)
        let value = unsafe unsafeLoadUnaligned(fromUncheckedByteOffset: offset, as: T.self)
        return byteOrder == .native ? value : value._mmapByteSwapped
    }

    /// The bytes as a span of `T` values in this CPU's byte order, with the same lifetime.
    ///
    /// Indexing the result is as fast as a raw pointer where the index is known to be in range,
    /// and bounds-checked where it is not.
    ///
    /// ```swift
    /// func sum(of map: borrowing Mmap) -> UInt64 {
    ///     let words = map.bytes.span(of: UInt64.self)
    ///     var total: UInt64 = 0
    ///     for i in words.indices { total &+= words[i] }
    ///     return total
    /// }
    /// ```
    ///
    /// A mapping starts on a page boundary plus the offset it was made at, so a mapping made at
    /// offset 0 (or at a multiple of `MemoryLayout<T>.alignment`) is aligned for every ``MmapScalar``.
    ///
    /// - Parameter type: The element type.
    /// - Returns: A span of `byteCount / MemoryLayout<T>.stride` values.
    /// - Precondition: The bytes start at an address aligned for `T`, and `byteCount` is a
    ///   multiple of `MemoryLayout<T>.stride`; otherwise the call traps with a message.
    @inlinable
    @_lifetime(copy self)
    public consuming func span<T: MmapScalar>(of type: T.Type) -> Span<T> {
        _mmapCheckScalar(T.self)
        let buffer = unsafe withUnsafeBytes { unsafe $0 }
        unsafe _mmapCheckTyped(buffer.baseAddress, buffer.count, T.self)
        let span = unsafe Span<T>(_unsafeBytes: buffer)
        return unsafe _overrideLifetime(span, copying: self)
    }
}

// MARK: - Loads and stores of mutable bytes

extension MutableRawSpan {
    /// Returns the value of type `T` stored at `offset`, in the byte order `byteOrder`.
    ///
    /// The same as `RawSpan`'s `load(fromByteOffset:as:byteOrder:)`.
    ///
    /// - Parameters:
    ///   - offset: The byte offset of the value; `offset + MemoryLayout<T>.size` must not pass
    ///     the end of the span.
    ///   - type: The type to load: a fixed-width integer or floating-point type.
    ///   - byteOrder: The order of the value's bytes in memory.
    /// - Returns: The value.
    @inlinable
    @inline(__always)
    public func load<T: MmapScalar>(fromByteOffset offset: Int = 0, as type: T.Type, byteOrder: MmapByteOrder) -> T {
        bytes.load(fromByteOffset: offset, as: T.self, byteOrder: byteOrder)
    }

    /// Stores `value` at `offset`, in the byte order `byteOrder`.
    ///
    /// The bytes need no alignment. A range outside the span is a programmer error and traps; to
    /// write a file that may have been truncated under the mapping without risking `SIGBUS`, use
    /// ``MutableMmapBytes/guardedStore(_:toByteOffset:)``.
    ///
    /// ```swift
    /// func stamp(_ map: inout MutableMmap, sequence: UInt64) {
    ///     var bytes = map.mutableBytes
    ///     bytes.store(sequence, toByteOffset: 8, byteOrder: .littleEndian)
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - value: The value to store.
    ///   - offset: The byte offset to store it at; `offset + MemoryLayout<T>.size` must not pass
    ///     the end of the span.
    ///   - byteOrder: The order to store the value's bytes in.
    @inlinable
    @inline(__always)
    public mutating func store<T: MmapScalar>(_ value: T, toByteOffset offset: Int = 0, byteOrder: MmapByteOrder) {
        _mmapCheckScalar(T.self)
        _mmapCheckAccess(offset, MemoryLayout<T>.size, byteCount)
        let ordered = byteOrder == .native ? value : value._mmapByteSwapped
        unsafe storeBytes(of: ordered, toUncheckedByteOffset: offset, as: T.self)
    }

    /// The bytes as a mutable span of `T` values in this CPU's byte order, with the same
    /// lifetime and exclusive access.
    ///
    /// ```swift
    /// func fill(_ map: inout MutableMmap) {
    ///     var words = map.mutableBytes.mutableSpan(of: UInt64.self)
    ///     for i in words.indices { words[i] = UInt64(i) }
    /// }
    /// ```
    ///
    /// - Parameter type: The element type.
    /// - Returns: A mutable span of `byteCount / MemoryLayout<T>.stride` values.
    /// - Precondition: The bytes start at an address aligned for `T`, and `byteCount` is a
    ///   multiple of `MemoryLayout<T>.stride`; otherwise the call traps with a message.
    @inlinable
    @_lifetime(copy self)
    public consuming func mutableSpan<T: MmapScalar>(of type: T.Type) -> MutableSpan<T> {
        _mmapCheckScalar(T.self)
        let buffer = unsafe withUnsafeMutableBytes { unsafe $0 }
        unsafe _mmapCheckTyped(UnsafeRawPointer(buffer.baseAddress), buffer.count, T.self)
        let span = unsafe MutableSpan<T>(_unsafeBytes: buffer)
        return unsafe _overrideLifetime(span, copying: self)
    }

    /// The bytes as a mutable span of `T` values in this CPU's byte order, borrowed from this
    /// span: it cannot be used while the result lives, and is whole again afterwards.
    ///
    /// ``mutableSpan(of:)`` consumes the span; inside a closure that lends one
    /// (``MmapHandle/withMutableBytes(_:)``, ``MmapByteQueue/withWritableBytes(_:)``) the lent
    /// span must be handed back, so take the typed view with this call:
    ///
    /// <!-- snippet-context: var map = try MutableMmap(anonymous: 4096) -->
    /// ```swift
    /// map.withMutableBytes { bytes in
    ///     var words = bytes.mutableElements(of: UInt64.self)
    ///     for i in words.indices { words[i] = UInt64(i) }
    /// }
    /// ```
    ///
    /// - Parameter type: The element type.
    /// - Returns: A mutable span of `byteCount / MemoryLayout<T>.stride` values.
    /// - Precondition: The bytes start at an address aligned for `T`, and `byteCount` is a
    ///   multiple of `MemoryLayout<T>.stride`; otherwise the call traps with a message.
    @inlinable
    @_lifetime(&self)
    public mutating func mutableElements<T: MmapScalar>(of type: T.Type) -> MutableSpan<T> {
        _mmapCheckScalar(T.self)
        let buffer = unsafe withUnsafeMutableBytes { unsafe $0 }
        unsafe _mmapCheckTyped(UnsafeRawPointer(buffer.baseAddress), buffer.count, T.self)
        let span = unsafe MutableSpan<T>(_unsafeBytes: buffer)
        return unsafe _overrideLifetime(span, mutating: &self)
    }
}

// MARK: - Checks

/// Traps unless `length` bytes at `offset` lie inside `count` bytes. The comparison is written as
/// the standard library writes its own span checks, so the optimizer removes the same ones.
@inlinable
@inline(__always)
internal func _mmapCheckAccess(_ offset: Int, _ length: Int, _ count: Int) {
    guard UInt(bitPattern: offset) <= UInt(bitPattern: count) && length <= count &- offset else {
        _mmapAccessOutOfBounds(offset, length, count)
    }
}

/// Traps with the message of an access of `length` bytes at `offset` outside `count` bytes.
@usableFromInline
@inline(never)
internal func _mmapAccessOutOfBounds(_ offset: Int, _ length: Int, _ count: Int) -> Never {
    fatalError("MmapKit: an access of \(length) bytes at byte offset \(offset) is outside the \(count) bytes")
}

/// Traps unless `count` bytes at `start` can be viewed as values of `T`.
@inlinable
@inline(__always)
internal func _mmapCheckTyped<T>(_ start: UnsafeRawPointer?, _ count: Int, _: T.Type) {
    let misaligned = Int(bitPattern: start) & (MemoryLayout<T>.alignment &- 1)
    guard misaligned == 0 && count % MemoryLayout<T>.stride == 0 else {
        _mmapTypedViewRefused(misaligned, count, MemoryLayout<T>.alignment, MemoryLayout<T>.stride, "\(T.self)")
    }
}

/// Traps with the reason a typed span cannot be made.
@usableFromInline
@inline(never)
internal func _mmapTypedViewRefused(
    _ misaligned: Int,
    _ count: Int,
    _ alignment: Int,
    _ stride: Int,
    _ type: String
) -> Never {
    if misaligned != 0 {
        fatalError(
            "MmapKit: the bytes start \(misaligned) bytes past a \(alignment)-byte boundary; a span of \(type) "
                + "needs them aligned (map at an offset that is a multiple of \(alignment), or extract an aligned range)"
        )
    }
    fatalError("MmapKit: \(count) bytes are not a whole number of \(type) values (\(stride) bytes each)")
}
