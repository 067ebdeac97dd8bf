internal import CMmapShim
internal import Glibc

// Guarded access: reads and writes that turn a SIGBUS (a page the file no longer backs, after
// truncation, an I/O error, or a full disk behind a sparse file) into an `MmapError` with code
// `fault`, instead of killing the process. Bounds are checked first. Spans and
// `withUnsafeBytes` stay unguarded: only these calls are protected.
//
// The public methods are inlinable generic shells, so they specialize in the caller; the
// bounds checks and the shim calls live in the non-generic internal cores below.

// MARK: - Guarded reads

extension MmapBytes where Self: ~Copyable {
    /// Loads a value from the bytes at `offset`, turning a `SIGBUS` into an error.
    ///
    /// A value of 1, 2, 4 or 8 bytes at an aligned offset is read with a single access.
    ///
    /// - Parameters:
    ///   - offset: The byte offset of the value; any alignment.
    ///   - type: The type to load.
    /// - Returns: The value.
    /// - Throws: ``MmapError/Code/outOfBounds`` when the value does not fit inside `count`
    ///   (nothing is read); ``MmapError/Code/fault`` with ``MmapError/faultOffset`` when the page
    ///   is no longer backed by the file.
    @inlinable
    public func guardedLoad<T: BitwiseCopyable>(fromByteOffset offset: Int = 0, as type: T.Type) throws(MmapError) -> T
    {
        try unsafe withUnsafeBytes { (buffer) throws(MmapError) -> T in
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
        try unsafe withUnsafeBytes { (buffer) throws(MmapError) -> [UInt8] in
            try unsafe _guardedArray(buffer, range)
        }
    }

    /// Reads one byte of every page covering `range`, turning a `SIGBUS` into an error: a
    /// prefault that works on every kernel (``Mmap/populate(range:)`` needs Linux 5.14).
    ///
    /// - Parameter range: Byte offsets within the bytes; `nil` for all of them.
    /// - Throws: ``MmapError/Code/outOfBounds`` or ``MmapError/Code/fault``.
    @inlinable
    public func guardedPrefault(range: Range<Int>? = nil) throws(MmapError) {
        try unsafe withUnsafeBytes { (buffer) throws(MmapError) in
            try unsafe _guardedPrefault(buffer, range ?? 0..<buffer.count)
        }
    }
}

// MARK: - Guarded writes

extension MutableMmapBytes where Self: ~Copyable {
    /// Stores `value` at `offset`, turning a `SIGBUS` into an error.
    ///
    /// - Parameters:
    ///   - value: The value to store.
    ///   - offset: The byte offset; any alignment.
    /// - Throws: ``MmapError/Code/outOfBounds`` (nothing is written) or ``MmapError/Code/fault``.
    @inlinable
    public mutating func guardedStore<T: BitwiseCopyable>(_ value: T, toByteOffset offset: Int) throws(MmapError) {
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
        try unsafe withUnsafeMutableBytes { (buffer) throws(MmapError) in
            try unsafe source.withUnsafeBytes { (bytes) throws(MmapError) in
                try unsafe _guardedStore(buffer, offset, bytes)
            }
        }
    }
}

// MARK: - Cores

/// Loads `size` bytes at `offset` of `buffer` into `out`, guarded.
@usableFromInline
internal func _guardedLoad(
    _ buffer: UnsafeRawBufferPointer,
    _ offset: Int,
    _ size: Int,
    _ out: UnsafeMutableRawPointer
) throws(MmapError) {
    try checkBounds(offset, size, buffer.count)
    guard size > 0 else { return }  // a zero-sized value reads nothing (the buffer may be empty)
    var fault: UnsafeMutableRawPointer? = nil
    let source = unsafe buffer.baseAddress.unsafelyUnwrapped + offset
    try unsafe checkGuard(CMmapShim_guardedLoad(source, size, out, &fault), fault, buffer.baseAddress, from: offset)
}

/// Copies `target.count` bytes from `offset` of `buffer` into `target`, guarded.
@usableFromInline
internal func _guardedCopy(
    from buffer: UnsafeRawBufferPointer,
    _ offset: Int,
    into target: UnsafeMutableRawBufferPointer
) throws(MmapError) {
    let length = target.count
    try checkBounds(offset, length, buffer.count)
    guard length > 0 else { return }
    var fault: UnsafeMutableRawPointer? = nil
    let source = unsafe buffer.baseAddress.unsafelyUnwrapped + offset
    let error = unsafe CMmapShim_guardedCopy(target.baseAddress, source, length, source, length, &fault)
    try unsafe checkGuard(error, fault, buffer.baseAddress, from: offset)
}

/// The bytes of `range` of `buffer` as an array, guarded.
@usableFromInline
internal func _guardedArray(_ buffer: UnsafeRawBufferPointer, _ range: Range<Int>) throws(MmapError) -> [UInt8] {
    try checkBounds(range.lowerBound, range.count, buffer.count)
    var error: MmapError? = nil
    let result = unsafe [UInt8](unsafeUninitializedCapacity: range.count) { target, initialized in
        do throws(MmapError) {
            try unsafe _guardedCopy(from: buffer, range.lowerBound, into: UnsafeMutableRawBufferPointer(target))
            initialized = range.count
        } catch let caught {
            error = caught
            initialized = 0
        }
    }
    if let error { throw error }
    return result
}

/// Touches every page of `range` of `buffer`, guarded.
@usableFromInline
internal func _guardedPrefault(_ buffer: UnsafeRawBufferPointer, _ range: Range<Int>) throws(MmapError) {
    try checkBounds(range.lowerBound, range.count, buffer.count)
    guard !range.isEmpty else { return }
    var fault: UnsafeMutableRawPointer? = nil
    let start = unsafe buffer.baseAddress.unsafelyUnwrapped + range.lowerBound
    try unsafe checkGuard(
        CMmapShim_guardedPrefault(start, range.count, &fault),
        fault,
        buffer.baseAddress,
        from: range.lowerBound
    )
}

/// Stores `bytes` at `offset` of `buffer`, guarded (one access for aligned 1, 2, 4, 8 bytes).
@usableFromInline
internal func _guardedStore(
    _ buffer: UnsafeMutableRawBufferPointer,
    _ offset: Int,
    _ bytes: UnsafeRawBufferPointer
) throws(MmapError) {
    let length = bytes.count
    try checkBounds(offset, length, buffer.count)
    guard length > 0 else { return }
    var fault: UnsafeMutableRawPointer? = nil
    let destination = unsafe buffer.baseAddress.unsafelyUnwrapped + offset
    let error =
        length <= 8
        ? unsafe CMmapShim_guardedStore(destination, length, bytes.baseAddress, &fault)
        : unsafe CMmapShim_guardedCopy(destination, bytes.baseAddress, length, destination, length, &fault)
    try unsafe checkGuard(error, fault, UnsafeRawPointer(buffer.baseAddress), from: offset)
}

/// Bounds of a guarded access, checked on integers before any pointer arithmetic.
private func checkBounds(_ offset: Int, _ length: Int, _ count: Int) throws(MmapError) {
    guard offset >= 0, length >= 0, offset <= count, length <= count - offset else {
        throw .outOfBounds(.access, "\(length) bytes at offset \(offset) are outside the \(count)-byte mapping")
    }
}

/// Turns the shim's result into an error carrying the faulting offset: the first byte of the
/// access in the page that faulted (`memcpy` may touch a later byte of that page first, or even
/// a later page: glibc copies 8 to 16 bytes by loading the last 8 first).
private func checkGuard(
    _ error: CInt,
    _ fault: UnsafeMutableRawPointer?,
    _ start: UnsafeRawPointer?,
    from accessOffset: Int
) throws(MmapError) {
    guard error != 0 else { return }
    guard error == EFAULT, let fault = unsafe fault, let start = unsafe start else {
        throw .system(.access, errno: error, "cannot install the SIGBUS handler")
    }
    let faultAddress = UInt(bitPattern: fault)
    let page = UInt(systemPageSize)
    let pageStart = PageAlignment.alignDown(faultAddress, to: page)
    let offset = max(accessOffset, Int(bitPattern: pageStart &- UInt(bitPattern: start)))
    var failure = MmapError(
        .access,
        .fault,
        errno: EFAULT,
        "the page holding offset \(offset) is no longer backed by the file (SIGBUS: truncated, I/O error or disk "
            + "full)"
    )
    failure.faultOffset = offset
    throw failure
}
