// Guarded access: reads and writes that turn a SIGBUS (a page the file no longer backs, after
// truncation, an I/O error, or a full disk behind a sparse file) into an `MmapError` with code
// `fault`, instead of killing the process. Bounds are checked first, by the handle's
// `_checkGuardedAccess` (a reservation also refuses uncommitted bytes there). Spans and
// `withUnsafeBytes` stay unguarded: only these calls are protected.
//
// The public methods are inlinable generic shells, so they specialize in the caller; the
// shim calls live in the non-generic internal cores of `Internals/GuardedCopy.swift`.

// MARK: - Guarded reads

extension MmapBytes where Self: ~Copyable {
    /// Loads a value from the bytes at `offset`, turning a `SIGBUS` into an error.
    ///
    /// A value of 1, 2, 4 or 8 bytes at an aligned offset is read with a single access. The value
    /// is in this CPU's byte order; `T` is a fixed-width integer or floating-point type
    /// (``MmapScalar``), for which every bit pattern is a value.
    ///
    /// - Parameters:
    ///   - offset: The byte offset of the value; any alignment.
    ///   - type: The type to load: a fixed-width integer or floating-point type.
    /// - Returns: The value.
    /// - Throws: ``MmapError/Code/outOfBounds`` when the value does not fit inside `count`
    ///   (nothing is read); ``MmapError/Code/fault`` with ``MmapError/faultOffset`` when the page
    ///   is no longer backed by the file.
    @inlinable
    public func guardedLoad<T: MmapScalar>(fromByteOffset offset: Int = 0, as type: T.Type) throws(MmapError) -> T {
        _mmapCheckScalar(T.self)
        try _checkGuardedAccess(offset: offset, length: MemoryLayout<T>.size)
        return try unsafe withUnsafeBytes { (buffer) throws(MmapError) -> T in
            try unsafe withUnsafeTemporaryAllocation(of: T.self, capacity: 1) { (value) throws(MmapError) -> T in
                let out = unsafe UnsafeMutableRawPointer(value.baseAddress.unsafelyUnwrapped)
                try unsafe _guardedLoad(buffer, offset, MemoryLayout<T>.size, out)
                return unsafe value.baseAddress.unsafelyUnwrapped.pointee
            }
        }
    }

    /// Copies `destination.byteCount` bytes starting at `offset` into `destination`, turning a
    /// `SIGBUS` into an error.
    ///
    /// - Parameters:
    ///   - offset: The first byte to copy.
    ///   - destination: Where the bytes go; its byte count says how many.
    /// - Throws: ``MmapError/Code/outOfBounds`` (nothing is copied) or
    ///   ``MmapError/Code/fault``, whose ``MmapError/faultOffset`` is the first byte of the
    ///   range in the page that faulted; after a fault the contents of `destination` are
    ///   unspecified (`memcpy` does not copy in order).
    @inlinable
    public func guardedCopyBytes(fromByteOffset offset: Int, into destination: inout MutableRawSpan) throws(MmapError) {
        try _checkGuardedAccess(offset: offset, length: destination.byteCount)
        try unsafe withUnsafeBytes { (buffer) throws(MmapError) in
            try unsafe destination.withUnsafeMutableBytes { (target) throws(MmapError) in
                try unsafe _guardedCopy(from: buffer, offset, into: target)
            }
        }
    }

    /// Copies the bytes in `range` into a new array, turning a `SIGBUS` into an error.
    ///
    /// - Parameter range: Byte offsets to copy.
    /// - Returns: The bytes.
    /// - Throws: ``MmapError/Code/outOfBounds`` or ``MmapError/Code/fault``.
    /// - Complexity: O(`range.count`).
    @inlinable
    public func guardedBytes(_ range: Range<Int>) throws(MmapError) -> [UInt8] {
        try _checkGuardedAccess(offset: range.lowerBound, length: range.count)
        return try unsafe withUnsafeBytes { (buffer) throws(MmapError) -> [UInt8] in
            try unsafe _guardedArray(buffer, range)
        }
    }

    /// Reads one byte of every page covering `range`, turning a `SIGBUS` into an error: a
    /// prefault that works on every kernel (``MmapHandle/populate(range:)`` needs Linux 5.14).
    ///
    /// - Parameter range: Byte offsets within the bytes; `nil` for all of them.
    /// - Throws: ``MmapError/Code/outOfBounds`` or ``MmapError/Code/fault``.
    @inlinable
    public func guardedPrefault(range: Range<Int>? = nil) throws(MmapError) {
        let range = range ?? 0..<count
        try _checkGuardedAccess(offset: range.lowerBound, length: range.count)
        try unsafe withUnsafeBytes { (buffer) throws(MmapError) in
            try unsafe _guardedPrefault(buffer, range)
        }
    }
}

// MARK: - Guarded writes

extension MutableMmapBytes where Self: ~Copyable {
    /// Stores `value` at `offset`, turning a `SIGBUS` into an error.
    ///
    /// The value is stored in this CPU's byte order; `T` is a fixed-width integer or
    /// floating-point type (``MmapScalar``), which has no padding to leak into the file.
    ///
    /// - Parameters:
    ///   - value: The value to store.
    ///   - offset: The byte offset; any alignment.
    /// - Throws: ``MmapError/Code/outOfBounds`` (nothing is written) or ``MmapError/Code/fault``.
    @inlinable
    public mutating func guardedStore<T: MmapScalar>(_ value: T, toByteOffset offset: Int) throws(MmapError) {
        _mmapCheckScalar(T.self)
        try _checkGuardedAccess(offset: offset, length: MemoryLayout<T>.size)
        try unsafe withUnsafeMutableBytes { (buffer) throws(MmapError) in
            var value = value
            try unsafe Swift.withUnsafeBytes(of: &value) { (bytes) throws(MmapError) in
                try unsafe _guardedStore(buffer, offset, bytes)
            }
        }
    }

    /// Copies `source` into the bytes at `offset`, turning a `SIGBUS` into an error.
    ///
    /// - Parameters:
    ///   - source: The bytes to write.
    ///   - offset: Where the first byte goes.
    /// - Throws: ``MmapError/Code/outOfBounds`` (nothing is written) or
    ///   ``MmapError/Code/fault``; after a fault any of the bytes of `source` before
    ///   ``MmapError/faultOffset``'s page may have been written, in no particular order.
    @inlinable
    public mutating func guardedStoreBytes(_ source: RawSpan, toByteOffset offset: Int) throws(MmapError) {
        try _checkGuardedAccess(offset: offset, length: source.byteCount)
        try unsafe withUnsafeMutableBytes { (buffer) throws(MmapError) in
            try unsafe source.withUnsafeBytes { (bytes) throws(MmapError) in
                try unsafe _guardedStore(buffer, offset, bytes)
            }
        }
    }

    /// Copies the bytes of `bytes` into the bytes at `offset`, turning a `SIGBUS` into an
    /// error: the writing counterpart of ``MmapBytes/guardedBytes(_:)``.
    ///
    /// - Parameters:
    ///   - bytes: The bytes to write.
    ///   - offset: Where the first byte goes.
    /// - Throws: ``MmapError/Code/outOfBounds`` (nothing is written) or
    ///   ``MmapError/Code/fault``; after a fault any of the bytes before
    ///   ``MmapError/faultOffset``'s page may have been written, in no particular order.
    /// - Complexity: O(`bytes.count`).
    @inlinable
    public mutating func guardedStoreBytes(_ bytes: [UInt8], toByteOffset offset: Int) throws(MmapError) {
        try unsafe guardedStoreBytes(bytes.span.bytes, toByteOffset: offset)
    }
}
