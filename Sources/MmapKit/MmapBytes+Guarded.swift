internal import CMmapShim
internal import Glibc

// Guarded access: reads and writes that turn a SIGBUS (a page the file no longer backs, after
// truncation, an I/O error, or a full disk behind a sparse file) into an `MmapError` with code
// `fault`, instead of killing the process. Bounds are checked first. Spans and
// `withUnsafeBytes` stay unguarded: only these calls are protected.

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
    public func guardedLoad<T: BitwiseCopyable>(fromByteOffset offset: Int = 0, as type: T.Type) throws(MmapError) -> T
    {
        let size = MemoryLayout<T>.size
        let count = self.count
        try checkBounds(offset, size, count)
        return try unsafe withUnsafeBytes { (buffer) throws(MmapError) -> T in
            try unsafe withUnsafeTemporaryAllocation(of: T.self, capacity: 1) { (value) throws(MmapError) -> T in
                var fault: UnsafeMutableRawPointer? = nil
                let source = unsafe buffer.baseAddress.unsafelyUnwrapped + offset
                let error = unsafe CMmapShim_guardedLoad(source, size, value.baseAddress, &fault)
                try unsafe checkGuard(error, fault, buffer.baseAddress)
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
    ///   ``MmapError/Code/fault``; after a fault `destination` holds a prefix of the bytes.
    public func guardedCopyBytes(fromByteOffset offset: Int, into destination: inout MutableRawSpan) throws(MmapError) {
        let length = destination.byteCount
        try checkBounds(offset, length, count)
        guard length > 0 else { return }
        try unsafe withUnsafeBytes { (buffer) throws(MmapError) in
            try unsafe destination.withUnsafeMutableBytes { (target) throws(MmapError) in
                var fault: UnsafeMutableRawPointer? = nil
                let source = unsafe buffer.baseAddress.unsafelyUnwrapped + offset
                let error = unsafe CMmapShim_guardedCopy(target.baseAddress, source, length, source, length, &fault)
                try unsafe checkGuard(error, fault, buffer.baseAddress)
            }
        }
    }

    /// Copies the bytes in `range` into a new array, turning a `SIGBUS` into an error.
    ///
    /// - Parameter range: Byte offsets to copy.
    /// - Returns: The bytes.
    /// - Throws: ``MmapError/Code/outOfBounds`` or ``MmapError/Code/fault``.
    /// - Complexity: O(`range.count`).
    public func guardedBytes(_ range: Range<Int>) throws(MmapError) -> [UInt8] {
        try checkBounds(range.lowerBound, range.count, count)
        var error: MmapError? = nil
        let result = unsafe [UInt8](unsafeUninitializedCapacity: range.count) { target, initialized in
            var span = unsafe MutableRawSpan(_unsafeBytes: UnsafeMutableRawBufferPointer(target))
            do throws(MmapError) {
                try guardedCopyBytes(fromByteOffset: range.lowerBound, into: &span)
                initialized = range.count
            } catch let caught {
                error = caught
                initialized = 0
            }
        }
        if let error { throw error }
        return result
    }

    /// Reads one byte of every page covering `range`, turning a `SIGBUS` into an error: a
    /// prefault that works on every kernel (``Mmap/populate(range:)`` needs Linux 5.14).
    ///
    /// - Parameter range: Byte offsets within the bytes; `nil` for all of them.
    /// - Throws: ``MmapError/Code/outOfBounds`` or ``MmapError/Code/fault``.
    public func guardedPrefault(range: Range<Int>? = nil) throws(MmapError) {
        let range = range ?? 0..<count
        try checkBounds(range.lowerBound, range.count, count)
        guard !range.isEmpty else { return }
        try unsafe withUnsafeBytes { (buffer) throws(MmapError) in
            var fault: UnsafeMutableRawPointer? = nil
            let start = unsafe buffer.baseAddress.unsafelyUnwrapped + range.lowerBound
            let error = unsafe CMmapShim_guardedPrefault(start, range.count, &fault)
            try unsafe checkGuard(error, fault, buffer.baseAddress)
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
    public mutating func guardedStore<T: BitwiseCopyable>(_ value: T, toByteOffset offset: Int) throws(MmapError) {
        let size = MemoryLayout<T>.size
        try checkBounds(offset, size, count)
        try unsafe withUnsafeMutableBytes { (buffer) throws(MmapError) in
            var fault: UnsafeMutableRawPointer? = nil
            var value = value
            let destination = unsafe buffer.baseAddress.unsafelyUnwrapped + offset
            let error = unsafe Swift.withUnsafeBytes(of: &value) {
                unsafe CMmapShim_guardedStore(destination, size, $0.baseAddress, &fault)
            }
            try unsafe checkGuard(error, fault, UnsafeRawPointer(buffer.baseAddress))
        }
    }

    /// Copies `source` into the bytes at `offset`, turning a `SIGBUS` into an error.
    ///
    /// - Parameters:
    ///   - source: The bytes to write.
    ///   - offset: Where the first byte goes.
    /// - Throws: ``MmapError/Code/outOfBounds`` (nothing is written) or
    ///   ``MmapError/Code/fault``; after a fault a prefix of `source` may have been written.
    public mutating func guardedStoreBytes(_ source: RawSpan, toByteOffset offset: Int) throws(MmapError) {
        let length = source.byteCount
        try checkBounds(offset, length, count)
        guard length > 0 else { return }
        try unsafe withUnsafeMutableBytes { (buffer) throws(MmapError) in
            try unsafe source.withUnsafeBytes { (bytes) throws(MmapError) in
                var fault: UnsafeMutableRawPointer? = nil
                let destination = unsafe buffer.baseAddress.unsafelyUnwrapped + offset
                let error = unsafe CMmapShim_guardedCopy(
                    destination,
                    bytes.baseAddress,
                    length,
                    destination,
                    length,
                    &fault
                )
                try unsafe checkGuard(error, fault, UnsafeRawPointer(buffer.baseAddress))
            }
        }
    }
}

// MARK: - Helpers

/// Bounds of a guarded access, checked on integers before any pointer arithmetic.
private func checkBounds(_ offset: Int, _ length: Int, _ count: Int) throws(MmapError) {
    guard offset >= 0, length >= 0, offset <= count, length <= count - offset else {
        throw .outOfBounds(.access, "\(length) bytes at offset \(offset) are outside the \(count)-byte mapping")
    }
}

/// Turns the shim's result into an error carrying the faulting offset.
private func checkGuard(
    _ error: CInt,
    _ fault: UnsafeMutableRawPointer?,
    _ start: UnsafeRawPointer?
) throws(MmapError) {
    guard error != 0 else { return }
    guard error == EFAULT, let fault = unsafe fault, let start = unsafe start else {
        throw .system(.access, errno: error, "cannot install the SIGBUS handler")
    }
    let offset = unsafe UnsafeRawPointer(fault) - start
    var failure = MmapError(
        .access,
        .fault,
        errno: EFAULT,
        "the page at offset \(offset) is no longer backed by the file (SIGBUS: truncated, I/O error or disk full)"
    )
    failure.faultOffset = offset
    throw failure
}
