import Synchronization

/// A single-producer, single-consumer byte queue over an ``MmapMirroredRing``.
///
/// One thread writes, one thread reads; both may run at once. Positions are monotonic byte
/// counters (`Atomic<Int>`): the producer publishes its tail with release ordering after copying,
/// the consumer publishes its head the same way after copying out, and each acquires the other's.
/// Thanks to the mirrored mapping every copy is one `memcpy`, whatever the positions.
///
/// ``withReadableBytes(_:)`` and ``withWritableBytes(_:)`` do the same without the copy: they
/// lend the queued bytes, or the free space, as one contiguous span (a record that crosses the
/// end of the ring needs no reassembly), and dequeue or enqueue what the closure says it used.
///
/// `Sendable` so that the producer and the consumer can share it. There is one producer and one
/// consumer at a time, and both rules below are checked:
/// - A call of the same side from inside the closure of ``withReadableBytes(_:)`` or
///   ``withWritableBytes(_:)`` (a `read(into:)` inside `withReadableBytes`, say) traps with a
///   message when it is made, before it moves anything: the span lent to the closure would
///   otherwise show bytes already handed out, or bytes already published would be overwritten.
///   Calling the other side from inside a closure is fine: a consumer that produces, as a
///   single-threaded user of the queue does, or the reverse.
/// - Calling ``write(_:)`` or ``withWritableBytes(_:)`` from two threads at once, or
///   ``read(into:)`` or ``withReadableBytes(_:)`` from two threads at once, is a programmer error.
///   Each call publishes its new position with a compare-and-exchange from the position it
///   started at, so a call that overlapped another of its side traps with a message when the
///   position moved while it ran (and a call made while the other thread is inside a closure
///   traps when it starts, if it sees the closure running). Bytes the two threads copied
///   meanwhile are not checked: the detection is after the fact, and a call that moves no
///   position (a closure that returns 0) is never detected, though its writes into the free
///   space may have overwritten bytes the other thread was publishing.
///
/// The checks cost a compare-and-exchange (a locked instruction) per call that moves bytes, and
/// a load and a branch.
public final class MmapByteQueue: Sendable {
    private let ring: MmapMirroredRing
    private let head = Atomic<Int>(0)  // bytes consumed so far
    private let tail = Atomic<Int>(0)  // bytes produced so far
    // Whether the consumer (producer) is inside the closure of withReadableBytes
    // (withWritableBytes). Stored only by that side's thread; atomic (relaxed, plain loads and
    // stores) only so that a misuse from a second thread is a trap, not a data race.
    private let consumerInClosure = Atomic<Bool>(false)
    private let producerInClosure = Atomic<Bool>(false)

    /// Creates an empty queue of `capacity` bytes.
    ///
    /// - Parameter capacity: A positive multiple of the page size.
    /// - Throws: As ``MmapMirroredRing/init(capacity:)``.
    public init(capacity: Int) throws(MmapError) {
        ring = try MmapMirroredRing(capacity: capacity)
    }

    /// The queue's capacity in bytes.
    public var capacity: Int { ring.capacity }

    /// Bytes written and not yet read: a snapshot, always in `0...capacity`, from any thread.
    ///
    /// The consumer's position is read first: the producer's, read after it, can only be at or
    /// past it (both only grow), so the difference is never negative; it is clamped to the
    /// capacity because the consumer may have moved on meanwhile. Exact on the producer's and
    /// the consumer's own threads when the other one is idle.
    public var count: Int {
        let consumed = head.load(ordering: .acquiring)
        let produced = tail.load(ordering: .acquiring)
        return min(produced - consumed, ring.capacity)
    }

    /// Copies as much of `source` as fits into the queue. Producer thread only.
    ///
    /// - Parameter source: The bytes to enqueue.
    /// - Returns: How many bytes were enqueued: `source.byteCount`, or fewer (0 when full).
    /// - Complexity: O(bytes copied), one `memcpy`.
    public func write(_ source: RawSpan) -> Int {
        checkNotInClosure(producerInClosure, "write(_:)", "withWritableBytes(_:)")
        let capacity = ring.capacity
        let produced = tail.load(ordering: .relaxed)  // only this thread stores it
        let consumed = head.load(ordering: .acquiring)
        let length = min(capacity - (produced - consumed), source.byteCount)
        guard length > 0 else { return 0 }
        unsafe source.withUnsafeBytes { bytes in
            unsafe ring.address(produced % capacity).copyMemory(
                from: bytes.baseAddress.unsafelyUnwrapped,
                byteCount: length
            )
        }
        publish(tail, from: produced, to: produced + length, "write(_:)", side: "producer")
        return length
    }

    /// Copies up to `destination.byteCount` queued bytes into `destination`. Consumer thread only.
    ///
    /// - Parameter destination: Where the bytes go, from its start.
    /// - Returns: How many bytes were dequeued (0 when empty).
    /// - Complexity: O(bytes copied), one `memcpy`.
    public func read(into destination: inout MutableRawSpan) -> Int {
        checkNotInClosure(consumerInClosure, "read(into:)", "withReadableBytes(_:)")
        let capacity = ring.capacity
        let consumed = head.load(ordering: .relaxed)  // only this thread stores it
        let produced = tail.load(ordering: .acquiring)
        let length = min(produced - consumed, destination.byteCount)
        guard length > 0 else { return 0 }
        unsafe destination.withUnsafeMutableBytes { bytes in
            unsafe bytes.baseAddress.unsafelyUnwrapped.copyMemory(
                from: ring.address(consumed % capacity),
                byteCount: length
            )
        }
        publish(head, from: consumed, to: consumed + length, "read(into:)", side: "consumer")
        return length
    }

    // MARK: - In place

    /// Calls `body` with every queued byte as one contiguous span, and dequeues the bytes it
    /// says it consumed. Consumer thread only.
    ///
    /// The bytes are read in place, never copied: thanks to the mirrored mapping the span is
    /// contiguous even when the queued bytes cross the end of the ring, so a record that wraps
    /// can be parsed like any other. The span holds what was queued when the call began (it may
    /// be empty); bytes the producer adds meanwhile are left for the next call. The producer never
    /// writes the span's bytes while it exists: they are not free until `body` returns.
    ///
    /// - Parameter body: A closure that reads the span from its start and returns how many bytes
    ///   it consumed (from the start, at most the span's `byteCount`) and a result. Consuming more
    ///   bytes than the span holds, or a negative count, is a programmer error and traps, and so
    ///   is a consumer call inside `body` (``read(into:)`` or a nested `withReadableBytes`): it
    ///   traps when it is made. Producing inside `body` is fine.
    /// - Returns: The result of `body`.
    /// - Throws: What `body` throws; then nothing is dequeued.
    /// - Complexity: O(1) plus `body`.
    public func withReadableBytes<R, E: Error>(
        _ body: (RawSpan) throws(E) -> (consumed: Int, result: R)
    ) throws(E) -> R {
        checkNotInClosure(consumerInClosure, "withReadableBytes(_:)", "withReadableBytes(_:)")
        let capacity = ring.capacity
        let consumed = head.load(ordering: .relaxed)  // only this thread stores it
        let produced = tail.load(ordering: .acquiring)
        let available = produced - consumed
        let span = unsafe RawSpan(_unsafeStart: ring.address(consumed % capacity), byteCount: available)
        consumerInClosure.store(true, ordering: .relaxed)
        defer { consumerInClosure.store(false, ordering: .relaxed) }
        let (count, result) = try body(span)
        guard count >= 0, count <= available else {
            fatalError("MmapKit: withReadableBytes consumed \(count) bytes, but \(available) were readable")
        }
        if count > 0 { publish(head, from: consumed, to: consumed + count, "withReadableBytes(_:)", side: "consumer") }
        return result
    }

    /// Calls `body` with all the free space of the queue as one contiguous span, and enqueues the
    /// bytes it says it wrote. Producer thread only.
    ///
    /// The bytes are written in place, never copied from a buffer of the caller's: the span is
    /// contiguous even when the free space crosses the end of the ring. Its initial contents are
    /// stale bytes; only the first `produced` bytes, which `body` must have written, are enqueued.
    /// The consumer never reads the span's bytes while it exists.
    ///
    /// - Parameter body: A closure that writes the span from its start and returns how many bytes
    ///   it produced (at most the span's `byteCount`, which is 0 when the queue is full). Producing
    ///   more bytes than the span holds, or a negative count, is a programmer error and traps, and
    ///   so is a producer call inside `body` (``write(_:)`` or a nested `withWritableBytes`): it
    ///   traps when it is made. Consuming inside `body` is fine.
    /// - Returns: The bytes enqueued: what `body` returned.
    /// - Throws: What `body` throws; then nothing is enqueued.
    /// - Complexity: O(1) plus `body`.
    @discardableResult
    public func withWritableBytes<E: Error>(_ body: (inout MutableRawSpan) throws(E) -> Int) throws(E) -> Int {
        checkNotInClosure(producerInClosure, "withWritableBytes(_:)", "withWritableBytes(_:)")
        let capacity = ring.capacity
        let produced = tail.load(ordering: .relaxed)  // only this thread stores it
        let consumed = head.load(ordering: .acquiring)
        let free = capacity - (produced - consumed)
        let start = unsafe ring.address(produced % capacity)
        var span = unsafe MutableRawSpan(_unsafeStart: start, byteCount: free)
        producerInClosure.store(true, ordering: .relaxed)
        defer { producerInClosure.store(false, ordering: .relaxed) }
        // The closure must hand its span back (see checkLentSpanReturned), on return and on throw.
        defer { unsafe checkLentSpanReturned(span, start: start, count: free) }
        let count = try body(&span)
        guard count >= 0, count <= free else {
            fatalError("MmapKit: withWritableBytes produced \(count) bytes, but \(free) were free")
        }
        if count > 0 { publish(tail, from: produced, to: produced + count, "withWritableBytes(_:)", side: "producer") }
        return count
    }

    // MARK: - Publishing a position

    /// Moves `position` (``head`` or ``tail``) from `old`, where the calling operation read it,
    /// to `new`, with release ordering; traps if another call of the same side moved it meanwhile.
    ///
    /// Only the side's own thread stores its position, and a call of the same side inside a
    /// closure traps when it starts, so the exchange fails only when a second producer or
    /// consumer thread used the queue at once. Storing regardless would move the position back,
    /// so that bytes already read are read again or bytes already written are overwritten before
    /// they are read.
    @inline(__always)
    private func publish(
        _ position: borrowing Atomic<Int>,
        from old: Int,
        to new: Int,
        _ call: StaticString,
        side: StaticString
    ) {
        #if DEBUG
        _MmapFaultInjection.runQueuePublishHook()
        #endif
        let (exchanged, found) = position.compareExchange(
            expected: old,
            desired: new,
            successOrdering: .releasing,
            failureOrdering: .relaxed
        )
        guard exchanged else { positionMoved(call, side, from: old, to: found) }
    }

    @inline(never)
    private func positionMoved(_ call: StaticString, _ side: StaticString, from old: Int, to found: Int) -> Never {
        fatalError(
            "MmapKit: MmapByteQueue.\(call) found the \(side) position moved from byte \(old) to \(found) "
                + "while it ran: a second \(side) thread used the queue at once (one producer and one consumer "
                + "at a time)"
        )
    }

    /// Traps when the calling side is inside the closure of `closure` (its flag is set): a
    /// nested call, or a call from a second thread of the same side that sees the first inside.
    @inline(__always)
    private func checkNotInClosure(_ flag: borrowing Atomic<Bool>, _ call: StaticString, _ closure: StaticString) {
        if flag.load(ordering: .relaxed) { calledInsideClosure(call, closure) }
    }

    @inline(never)
    private func calledInsideClosure(_ call: StaticString, _ closure: StaticString) -> Never {
        fatalError(
            "MmapKit: MmapByteQueue.\(call) was called while \(closure) was running: from inside its closure, "
                + "or from a second thread of the same side (one producer and one consumer at a time; the other "
                + "side may be called from inside a closure)"
        )
    }
}
