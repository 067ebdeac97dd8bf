// MARK: - Bytes

extension MmapHandle {
    /// The number of bytes mapped (the count asked for, not rounded to the page).
    @inlinable
    public var count: Int { region.count }

    /// Whether the mapping is empty (an empty file, or a count of 0). An empty mapping makes no
    /// system call.
    @inlinable
    public var isEmpty: Bool { region.count == 0 }

    /// The mapped bytes, borrowed from this mapping.
    ///
    /// The compiler keeps the mapping alive, and forbids unmapping or resizing it, while the
    /// span exists. If another process or mapping writes the same shared file meanwhile, the
    /// span sees the writes (which formally breaks `RawSpan`'s no-mutation rule); copy the bytes
    /// out first when the file is not under your control.
    @inlinable
    public var bytes: RawSpan {
        @_lifetime(borrow self)
        borrowing get {
            let span = unsafe RawSpan(_unsafeBytes: UnsafeRawBufferPointer(region.buffer))
            return unsafe _overrideLifetime(span, borrowing: self)
        }
    }

    /// Calls `body` with the mapped bytes, borrowed for the call.
    ///
    /// The same bytes as ``bytes``, and as safe: the compiler rejects returning the span or
    /// storing it outside the closure (see "What the compiler cannot check" in the
    /// documentation for the one hole Swift 6.3.1 leaves). Prefer it
    /// on a local binding in hot code: with Swift 6.3.1, taking ``bytes`` of a local binding
    /// costs a heap allocation (a box for the binding; see "Known compiler limitations" in the
    /// README), and this call costs none.
    ///
    /// <!-- snippet-context: let path = "/tmp/data" -->
    /// ```swift
    /// let map = try Mmap(path: path)
    /// let (magic, length) = map.withBytes { bytes in
    ///     (bytes.load(as: UInt32.self, byteOrder: .bigEndian),
    ///      bytes.load(fromByteOffset: 4, as: UInt32.self, byteOrder: .littleEndian))
    /// }
    /// ```
    ///
    /// - Parameter body: A closure that reads the bytes.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    @inlinable
    public func withBytes<R: ~Copyable, E: Error>(_ body: (RawSpan) throws(E) -> R) throws(E) -> R {
        try body(bytes)
    }

    /// Calls `body` with a pointer to the mapped bytes, valid only during the call.
    ///
    /// - Parameter body: A closure that reads the bytes; it must not let the pointer escape.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    @inlinable
    public func withUnsafeBytes<R: ~Copyable, E: Error>(
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try unsafe body(UnsafeRawBufferPointer(region.buffer))
    }
}

// MARK: - Mutable bytes

extension MmapHandle where Access == MmapReadWrite {
    /// The mapped bytes, for reading and writing, with exclusive access to this mapping.
    ///
    /// While the span exists nothing else can use the mapping: not ``bytes``, not
    /// ``flush(range:)``, not ``unmap()``. Write, let the span end, then flush.
    @inlinable
    public var mutableBytes: MutableRawSpan {
        @_lifetime(&self)
        mutating get {
            let span = unsafe MutableRawSpan(_unsafeBytes: region.buffer)
            return unsafe _overrideLifetime(span, mutating: &self)
        }
    }

    /// Calls `body` with the mapped bytes for reading and writing, with exclusive access for the call.
    ///
    /// The same bytes as ``mutableBytes``, and as safe: the compiler rejects returning the span
    /// or storing it outside the closure. Swift 6.3.1 lets one move slip through, an assignment
    /// to a captured variable (`outer = span; span = MutableRawSpan()`); this call checks that
    /// it got its own span back and traps otherwise, before the mapping can be unmapped.
    ///
    /// - Parameter body: A closure that reads and writes the bytes.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    @inlinable
    public mutating func withMutableBytes<R: ~Copyable, E: Error>(
        _ body: (inout MutableRawSpan) throws(E) -> R
    ) throws(E) -> R {
        let start = unsafe region.buffer.baseAddress
        let lent = count
        var span = mutableBytes
        defer { unsafe checkLentSpanReturned(span, start: start, count: lent) }
        return try body(&span)
    }

    /// Calls `body` with a mutable pointer to the mapped bytes, valid only during the call.
    ///
    /// - Parameter body: A closure that reads and writes the bytes; it must not let the
    ///   pointer escape.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    @inlinable
    public mutating func withUnsafeMutableBytes<R: ~Copyable, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try unsafe body(region.buffer)
    }
}

// MARK: - Guarded access

extension MmapHandle: MmapBytes {}

extension MmapHandle: MutableMmapBytes where Access == MmapReadWrite {}
