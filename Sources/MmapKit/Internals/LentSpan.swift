/// Traps unless `span`, handed back by a `withMutableBytes` closure, is still the span it was
/// lent: `count` bytes at `start`. `withWritableBytes` of ``MmapByteQueue`` checks the same.
///
/// Swift 6.3.1 does not check an assignment to a captured `~Escapable` variable inside a
/// closure, so `outer = span; span = MutableRawSpan()` compiles without `unsafe` and moves the
/// lent span out of the call, where it would outlive the mapping (a write through it after
/// `unmap()` lands in whatever is mapped there next). The compiler cannot reject it; the lender
/// checks on the way out, on return and on throw, before the caller can unmap anything. Two
/// comparisons: nothing a write loop would notice.
@inlinable
internal func checkLentSpanReturned(
    _ span: borrowing MutableRawSpan,
    start: UnsafeMutableRawPointer?,
    count: Int,
    _ function: StaticString = #function
) {
    let returned = unsafe span.withUnsafeBytes { $0.baseAddress }
    let same = unsafe returned == UnsafeRawPointer(start)
    // fatalError, not precondition: an -O build keeps the message.
    if span.byteCount != count || (count != 0 && !same) {
        fatalError(
            "MmapKit: \(function) got back another span than it lent: the closure moved or consumed "
                + "its span (outer = span, or a consuming call such as mutableSpan(of:)), and a span "
                + "moved out would outlive the memory. Keep the span inside the closure; for a typed "
                + "view of it use mutableElements(of:), which borrows it."
        )
    }
}
