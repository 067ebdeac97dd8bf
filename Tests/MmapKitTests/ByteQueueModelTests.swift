import Glibc
import MmapKit
import Testing

extension MmapKitTests {
    /// Random sequences of every `MmapByteQueue` call on one thread, against a byte-level model
    /// (the bytes queued, in order): copies in and out, in-place reads and writes, the other
    /// side called from inside a closure, closures that throw, at every position of the ring
    /// (thousands of wraps through a one-page queue).
    @Suite struct ByteQueueModelTests {
        struct Stop: Error {}

        @Test(arguments: 1...6 as ClosedRange<UInt64>)
        func randomSequencesOfEveryCallMatchTheModel(seed: UInt64) throws {
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            let queue = try MmapByteQueue(capacity: page)
            var random = ModelRandom(seed: seed)
            var model = QueueModel(capacity: page)
            for step in 0..<4_000 {
                let size = Int(random.next() % UInt64(page + page / 2))
                switch random.next() % 8 {
                case 0:  // write(_:)
                    let bytes = model.nextBytes(size)
                    let written = unsafe queue.write(bytes.span.bytes)
                    #expect(written == min(size, model.free), "step \(step)")
                    model.enqueue(bytes.prefix(written))
                case 1:  // read(into:)
                    let read = dequeue(queue, upTo: size)
                    #expect(read == model.dequeue(min(size, model.queued.count)), "step \(step)")
                case 2:  // withWritableBytes, producing part of the free space
                    let produced = model.nextBytes(min(size, model.free))
                    let count = queue.withWritableBytes { span in
                        #expect(span.byteCount == model.free, "step \(step)")
                        for (i, byte) in produced.enumerated() {
                            span.storeBytes(of: byte, toByteOffset: i, as: UInt8.self)
                        }
                        return produced.count
                    }
                    #expect(count == produced.count)
                    model.enqueue(produced[...])
                case 3:  // withReadableBytes, consuming part of what is queued
                    let consume = min(size, model.queued.count)
                    let seen = queue.withReadableBytes { span in (consumed: consume, result: array(span)) }
                    #expect(seen == model.queued, "step \(step)")
                    model.queued.removeFirst(consume)
                case 4:  // a consumer that produces: the span keeps what was queued when it began
                    let before = model.queued
                    let bytes = model.nextBytes(size)
                    let (seen, written) = queue.withReadableBytes { span in
                        let written = unsafe queue.write(bytes.span.bytes)
                        return (consumed: 0, result: (array(span), written))
                    }
                    #expect(seen == before, "step \(step)")
                    #expect(written == min(size, model.free), "step \(step)")
                    model.enqueue(bytes.prefix(written))
                case 5:  // a producer that consumes: the free span was fixed when it began
                    let freeBefore = model.free
                    let produced = model.nextBytes(min(size / 2, freeBefore))
                    let consumeCount = min(size, model.queued.count)
                    let expectedRead = Array(model.queued.prefix(consumeCount))
                    var read: [UInt8] = []
                    queue.withWritableBytes { span in
                        #expect(span.byteCount == freeBefore, "step \(step)")
                        read = dequeue(queue, upTo: consumeCount)
                        for (i, byte) in produced.enumerated() {
                            span.storeBytes(of: byte, toByteOffset: i, as: UInt8.self)
                        }
                        return produced.count
                    }
                    #expect(read == expectedRead, "step \(step)")
                    model.queued.removeFirst(consumeCount)
                    model.enqueue(produced[...])
                case 6:  // closures that throw move nothing, on either side
                    #expect(throws: Stop.self) {
                        try queue.withReadableBytes { (_: RawSpan) throws(Stop) -> (consumed: Int, result: Void) in
                            throw Stop()
                        }
                    }
                    #expect(throws: Stop.self) {
                        try queue.withWritableBytes { (span: inout MutableRawSpan) throws(Stop) -> Int in
                            if span.byteCount > 0 { span.storeBytes(of: 0xEE, toByteOffset: 0, as: UInt8.self) }
                            throw Stop()
                        }
                    }
                default:  // drain and check everything
                    #expect(dequeue(queue, upTo: page) == model.dequeue(model.queued.count), "step \(step)")
                }
                #expect(queue.count == model.queued.count, "step \(step)")
            }
        }
    }
}

/// The bytes a queue should hold, in order, and the stream of bytes written to it.
private struct QueueModel {
    let capacity: Int
    var queued: [UInt8] = []
    var written = 0

    init(capacity: Int) { self.capacity = capacity }

    var free: Int { capacity - queued.count }

    /// The next `count` bytes of the stream (each position of the stream has its own byte).
    mutating func nextBytes(_ count: Int) -> [UInt8] {
        defer { written += count }
        return (written..<(written + count)).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 8) }
    }

    mutating func enqueue(_ bytes: ArraySlice<UInt8>) {
        queued += bytes
    }

    mutating func dequeue(_ count: Int) -> [UInt8] {
        defer { queued.removeFirst(count) }
        return Array(queued.prefix(count))
    }
}
