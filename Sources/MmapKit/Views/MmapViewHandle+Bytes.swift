// MARK: - Bytes

extension MmapViewHandle {
    /// The number of bytes in the view.
    @inlinable
    public var count: Int { storage.count }

    /// Whether the view is empty.
    @inlinable
    public var isEmpty: Bool { storage.count == 0 }

    /// The view's bytes, borrowed from the view.
    @inlinable
    public var bytes: RawSpan {
        @_lifetime(borrow self)
        borrowing get {
            let span = unsafe RawSpan(_unsafeBytes: UnsafeRawBufferPointer(storage.buffer))
            return unsafe _overrideLifetime(span, borrowing: self)
        }
    }

    /// Calls `body` with the view's bytes, borrowed for the call.
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
    /// let view = try Mmap(path: path).share()
    /// let first = view.withBytes { $0.byteCount > 0 ? $0.load(as: UInt8.self, byteOrder: .littleEndian) : 0 }
    /// ```
    ///
    /// - Parameter body: A closure that reads the bytes.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    @inlinable
    public func withBytes<R: ~Copyable, E: Error>(_ body: (RawSpan) throws(E) -> R) throws(E) -> R {
        try body(bytes)
    }

    /// Calls `body` with a pointer to the view's bytes, valid only during the call.
    ///
    /// - Parameter body: A closure that reads the bytes; it must not let the pointer escape.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    @inlinable
    public func withUnsafeBytes<R: ~Copyable, E: Error>(
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try unsafe body(UnsafeRawBufferPointer(storage.buffer))
    }
}

extension MmapViewHandle where Access == MmapReadWrite {
    /// The view's bytes for reading and writing, with exclusive access to this view.
    @inlinable
    public var mutableBytes: MutableRawSpan {
        @_lifetime(&self)
        mutating get {
            let span = unsafe MutableRawSpan(_unsafeBytes: storage.buffer)
            return unsafe _overrideLifetime(span, mutating: &self)
        }
    }

    /// Calls `body` with the view's bytes for reading and writing, with exclusive access for the call.
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
        let start = unsafe storage.buffer.baseAddress
        let lent = count
        var span = mutableBytes
        defer { unsafe checkLentSpanReturned(span, start: start, count: lent) }
        return try body(&span)
    }

    /// Calls `body` with a mutable pointer to the view's bytes, valid only during the call.
    ///
    /// - Parameter body: A closure that reads and writes the bytes; it must not let the
    ///   pointer escape.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    @inlinable
    public mutating func withUnsafeMutableBytes<R: ~Copyable, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try unsafe body(storage.buffer)
    }
}

extension MmapViewHandle: MmapBytes {}

extension MmapViewHandle: MutableMmapBytes where Access == MmapReadWrite {}
