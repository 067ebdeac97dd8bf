import Synchronization

/// A single-producer, single-consumer byte queue over an ``MmapMirroredRing``.
///
/// One thread writes, one thread reads; both may run at once. Positions are monotonic byte
/// counters (`Atomic<Int>`): the producer publishes its tail with release ordering after copying,
/// the consumer publishes its head the same way after copying out, and each acquires the other's.
/// Thanks to the mirrored mapping every copy is one `memcpy`, whatever the positions.
///
/// `Sendable` so that the producer and the consumer can share it; calling ``write(_:)`` from two
/// threads at once, or ``read(into:)`` from two threads at once, is a programmer error (the
/// queue does not detect it).
public final class MmapByteQueue: Sendable {
    private let ring: MmapMirroredRing
    private let head = Atomic<Int>(0)  // bytes consumed so far
    private let tail = Atomic<Int>(0)  // bytes produced so far

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
        tail.store(produced + length, ordering: .releasing)
        return length
    }

    /// Copies up to `destination.byteCount` queued bytes into `destination`. Consumer thread only.
    ///
    /// - Parameter destination: Where the bytes go, from its start.
    /// - Returns: How many bytes were dequeued (0 when empty).
    /// - Complexity: O(bytes copied), one `memcpy`.
    public func read(into destination: inout MutableRawSpan) -> Int {
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
        head.store(consumed + length, ordering: .releasing)
        return length
    }
}
