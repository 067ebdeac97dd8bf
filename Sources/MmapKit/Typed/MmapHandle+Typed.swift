// Typed loads and stores on the handles themselves. They read and write through `bytes` and
// `mutableBytes`, so they are the same checked accesses; they exist because a value-returning
// method takes no span of the caller's binding: `map.load(...)` on a local `let map` costs no
// heap allocation, where a span of it may (see "Known compiler limitations" in the README).

// MARK: - Mappings

extension MmapHandle {
    /// Returns the value of type `T` stored at `offset` of the mapping, in the byte order
    /// `byteOrder`; the same as `bytes.load(fromByteOffset:as:byteOrder:)`.
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
    ///     ``count`` (a programmer error that traps, as an out-of-range index does).
    ///   - type: The type to load: a fixed-width integer or floating-point type.
    ///   - byteOrder: The order of the value's bytes in the file or memory.
    /// - Returns: The value.
    @inlinable
    @inline(__always)
    public func load<T: MmapScalar>(fromByteOffset offset: Int = 0, as type: T.Type, byteOrder: MmapByteOrder) -> T {
        bytes.load(fromByteOffset: offset, as: T.self, byteOrder: byteOrder)
    }
}

extension MmapHandle where Access == MmapReadWrite {
    /// Stores `value` at `offset` of the mapping, in the byte order `byteOrder`; the same as
    /// `mutableBytes.store(_:toByteOffset:byteOrder:)`.
    ///
    /// - Parameters:
    ///   - value: The value to store.
    ///   - offset: The byte offset to store it at; `offset + MemoryLayout<T>.size` must not pass
    ///     ``count`` (a programmer error that traps).
    ///   - byteOrder: The order to store the value's bytes in.
    @inlinable
    @inline(__always)
    public mutating func store<T: MmapScalar>(_ value: T, toByteOffset offset: Int = 0, byteOrder: MmapByteOrder) {
        var bytes = mutableBytes
        bytes.store(value, toByteOffset: offset, byteOrder: byteOrder)
    }
}

// MARK: - Views

extension MmapViewHandle {
    /// Returns the value of type `T` stored at `offset` of the view, in the byte order
    /// `byteOrder`; the same as `bytes.load(fromByteOffset:as:byteOrder:)`.
    ///
    /// - Parameters:
    ///   - offset: The byte offset of the value; `offset + MemoryLayout<T>.size` must not pass
    ///     ``count`` (a programmer error that traps).
    ///   - type: The type to load: a fixed-width integer or floating-point type.
    ///   - byteOrder: The order of the value's bytes in the file or memory.
    /// - Returns: The value.
    @inlinable
    @inline(__always)
    public func load<T: MmapScalar>(fromByteOffset offset: Int = 0, as type: T.Type, byteOrder: MmapByteOrder) -> T {
        bytes.load(fromByteOffset: offset, as: T.self, byteOrder: byteOrder)
    }
}

extension MmapViewHandle where Access == MmapReadWrite {
    /// Stores `value` at `offset` of the view, in the byte order `byteOrder`; the same as
    /// `mutableBytes.store(_:toByteOffset:byteOrder:)`.
    ///
    /// - Parameters:
    ///   - value: The value to store.
    ///   - offset: The byte offset to store it at; `offset + MemoryLayout<T>.size` must not pass
    ///     ``count`` (a programmer error that traps).
    ///   - byteOrder: The order to store the value's bytes in.
    @inlinable
    @inline(__always)
    public mutating func store<T: MmapScalar>(_ value: T, toByteOffset offset: Int = 0, byteOrder: MmapByteOrder) {
        var bytes = mutableBytes
        bytes.store(value, toByteOffset: offset, byteOrder: byteOrder)
    }
}
