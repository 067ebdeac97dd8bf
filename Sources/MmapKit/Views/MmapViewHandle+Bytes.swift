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
