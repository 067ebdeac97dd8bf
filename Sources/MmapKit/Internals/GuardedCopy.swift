internal import Glibc

// The cores of guarded access (the public shells are in `Guarded/MmapBytes+Guarded.swift`):
// non-generic, so that each is compiled once, and the only Swift code that reaches the SIGBUS
// guard of the shim (through the chokepoint's `system_guarded*`). Each checks its bounds
// against the buffer again before any pointer arithmetic: the shells' checks decide the error
// a caller sees, these keep the memory safe whatever the caller.

/// Loads `size` bytes at `offset` of `buffer` into `out`, guarded.
@usableFromInline
internal func _guardedLoad(
    _ buffer: UnsafeRawBufferPointer,
    _ offset: Int,
    _ size: Int,
    _ out: UnsafeMutableRawPointer
) throws(MmapError) {
    try _checkGuardedBounds(offset, size, buffer.count)
    guard size > 0 else { return }  // a zero-sized value reads nothing (the buffer may be empty)
    var fault: UnsafeMutableRawPointer? = nil
    let source = unsafe buffer.baseAddress.unsafelyUnwrapped + offset
    try unsafe checkGuard(system_guardedLoad(source, size, out, &fault), fault, buffer.baseAddress, from: offset)
}

/// Copies `target.count` bytes from `offset` of `buffer` into `target`, guarded.
@usableFromInline
internal func _guardedCopy(
    from buffer: UnsafeRawBufferPointer,
    _ offset: Int,
    into target: UnsafeMutableRawBufferPointer
) throws(MmapError) {
    let length = target.count
    try _checkGuardedBounds(offset, length, buffer.count)
    guard length > 0 else { return }
    var fault: UnsafeMutableRawPointer? = nil
    let source = unsafe buffer.baseAddress.unsafelyUnwrapped + offset
    let error = unsafe system_guardedCopy(target.baseAddress, source, length, source, length, &fault)
    try unsafe checkGuard(error, fault, buffer.baseAddress, from: offset)
}

/// The bytes of `range` of `buffer` as an array, guarded.
@usableFromInline
internal func _guardedArray(_ buffer: UnsafeRawBufferPointer, _ range: Range<Int>) throws(MmapError) -> [UInt8] {
    try _checkGuardedBounds(range.lowerBound, range.count, buffer.count)
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
    try _checkGuardedBounds(range.lowerBound, range.count, buffer.count)
    guard !range.isEmpty else { return }
    var fault: UnsafeMutableRawPointer? = nil
    let start = unsafe buffer.baseAddress.unsafelyUnwrapped + range.lowerBound
    try unsafe checkGuard(
        system_guardedPrefault(start, range.count, &fault),
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
    try _checkGuardedBounds(offset, length, buffer.count)
    guard length > 0 else { return }
    var fault: UnsafeMutableRawPointer? = nil
    let destination = unsafe buffer.baseAddress.unsafelyUnwrapped + offset
    let error =
        length <= 8
        ? unsafe system_guardedStore(destination, length, bytes.baseAddress, &fault)
        : unsafe system_guardedCopy(destination, bytes.baseAddress, length, destination, length, &fault)
    try unsafe checkGuard(error, fault, UnsafeRawPointer(buffer.baseAddress), from: offset)
}

/// Bounds of a guarded access, checked on integers before any pointer arithmetic: `length`
/// bytes at `offset` must lie inside `count` bytes.
///
/// Inlinable (four comparisons in the caller, after specialization); the error, with its
/// message, is built out of line.
@inlinable
@inline(__always)
internal func _checkGuardedBounds(_ offset: Int, _ length: Int, _ count: Int) throws(MmapError) {
    guard offset >= 0, length >= 0, offset <= count, length <= count &- offset else {
        throw _guardedBoundsError(offset, length, count)
    }
}

/// The error of a guarded access outside its bytes (cold: built only when it is thrown).
@usableFromInline
@inline(never)
internal func _guardedBoundsError(_ offset: Int, _ length: Int, _ count: Int) -> MmapError {
    .outOfBounds(.access, "\(length) bytes at offset \(offset) are outside the \(count)-byte mapping")
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
