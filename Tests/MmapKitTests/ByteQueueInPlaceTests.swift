import Dispatch
import Foundation
import Glibc
import MmapKit
import Synchronization
import Testing

extension MmapKitTests {
    /// `MmapByteQueue.withReadableBytes(_:)` and `withWritableBytes(_:)`: the queued bytes and the
    /// free space lent as one contiguous span, across the end of the ring.
    @Suite struct ByteQueueInPlaceTests {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))

        /// Writes `bytes` in place; returns how many fitted.
        func produce(_ queue: MmapByteQueue, _ bytes: [UInt8]) -> Int {
            queue.withWritableBytes { span in
                let count = min(span.byteCount, bytes.count)
                for i in 0..<count { span.storeBytes(of: bytes[i], toByteOffset: i, as: UInt8.self) }
                return count
            }
        }

        @Test func writesAndReadsInPlaceAcrossTheEndOfTheRing() throws {
            try expectNoLeaks { () throws(MmapError) in
                let queue = try MmapByteQueue(capacity: page)
                var position = 0
                // 700-byte records never divide the page: many of them cross the end of the ring.
                for round in 0..<50 {
                    let record = pattern(700, from: position)
                    #expect(produce(queue, record) == 700)
                    #expect(queue.count == 700)
                    let seen = queue.withReadableBytes { span in (consumed: span.byteCount, result: array(span)) }
                    #expect(seen == record, "round \(round) at ring offset \(position % page)")
                    #expect(queue.count == 0)
                    position += 700
                }
            }
        }

        @Test func consumesOnlyWhatTheClosureSays() throws {
            try expectNoLeaks { () throws(MmapError) in
                let queue = try MmapByteQueue(capacity: page)
                #expect(queue.withReadableBytes { span in (consumed: 0, result: span.byteCount) } == 0, "empty")
                #expect(produce(queue, pattern(100)) == 100)
                let first = queue.withReadableBytes { span in
                    (consumed: 10, result: array(span.extracting(0..<10)))
                }
                #expect(first == pattern(10))
                #expect(queue.count == 90)
                let rest = queue.withReadableBytes { span in (consumed: 0, result: array(span)) }
                #expect(rest == Array(pattern(100)[10...]), "nothing consumed: the same bytes again")
                // A full queue lends no free space; copying reads and in-place writes mix.
                #expect(produce(queue, pattern(2 * page)) == page - 90)
                #expect(queue.withWritableBytes { span in span.byteCount } == 0)
                var out = [UInt8](repeating: 0, count: page)
                var elements = out.mutableSpan
                var bytes = unsafe elements.mutableBytes
                #expect(queue.read(into: &bytes) == page)
                _ = consume bytes
                _ = consume elements
                #expect(out == Array(pattern(100)[10...]) + pattern(page - 90))
            }
        }

        struct Refused: Error {}

        @Test func aThrowingClosureMovesNothing() throws {
            try expectNoLeaks { () throws(MmapError) in
                let queue = try MmapByteQueue(capacity: page)
                #expect(throws: Refused.self) {
                    try queue.withWritableBytes { (span: inout MutableRawSpan) throws(Refused) -> Int in
                        span.storeBytes(of: 1, toByteOffset: 0, as: UInt8.self)
                        throw Refused()
                    }
                }
                #expect(queue.count == 0)
                #expect(produce(queue, [1, 2, 3]) == 3)
                #expect(throws: Refused.self) {
                    try queue.withReadableBytes { (_: RawSpan) throws(Refused) -> (consumed: Int, result: Int) in
                        throw Refused()
                    }
                }
                #expect(queue.count == 3)
            }
        }

        /// A producer thread writes length-prefixed records (2-byte little-endian length, 16 to
        /// 512 bytes in all) in place; this thread parses them in place, never copying one that
        /// wraps. Every record's bytes must arrive intact and in order.
        @Test func aProducerAndAConsumerExchangeFramedRecordsInPlace() throws {
            let records = 30_000  // about 8 MiB through a 4-page ring: thousands of wraps
            let queue = try MmapByteQueue(capacity: 4 * page)
            let group = DispatchGroup()
            group.enter()
            Thread.detach {
                var sent = 0
                while sent < records {
                    let size = recordSize(sent)
                    let written = queue.withWritableBytes { span in
                        guard span.byteCount >= size else { return 0 }
                        span.storeBytes(of: UInt16(size).littleEndian, toByteOffset: 0, as: UInt16.self)
                        for i in 2..<size {
                            span.storeBytes(of: recordByte(sent, i), toByteOffset: i, as: UInt8.self)
                        }
                        return size
                    }
                    if written > 0 { sent += 1 }
                }
                group.leave()
            }
            var received = 0
            var mismatches = 0
            while received < records {
                let (parsed, bad) = queue.withReadableBytes { span in
                    var offset = 0
                    var parsed = 0
                    var bad = 0
                    while span.byteCount - offset >= 2 {
                        let size = Int(span.load(fromByteOffset: offset, as: UInt16.self, byteOrder: .littleEndian))
                        guard span.byteCount - offset >= size else { break }
                        if size != recordSize(received + parsed) { bad += 1 }
                        for i in 2..<size
                        where span.load(fromByteOffset: offset + i, as: UInt8.self, byteOrder: .native)
                            != recordByte(received + parsed, i)
                        {
                            bad += 1
                        }
                        offset += size
                        parsed += 1
                    }
                    return (consumed: offset, result: (parsed, bad))
                }
                received += parsed
                mismatches += bad
            }
            group.wait()
            #expect(mismatches == 0)
            #expect(queue.count == 0)
        }

        @Test func consumingMoreThanIsReadableTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                let queue = try? MmapByteQueue(capacity: Int(sysconf(Int32(_SC_PAGESIZE))))
                _ = unsafe queue?.write([UInt8]([1, 2, 3]).span.bytes)
                queue?.withReadableBytes { span in (consumed: span.byteCount + 1, result: ()) }
            }
            let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
            #expect(message.contains("consumed 4 bytes, but 3 were readable"), "\(message)")
        }

        @Test func producingMoreThanIsFreeTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                let queue = try? MmapByteQueue(capacity: Int(sysconf(Int32(_SC_PAGESIZE))))
                queue?.withWritableBytes { span in span.byteCount + 1 }
            }
            let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
            #expect(message.contains("were free"), "\(message)")
        }

        // MARK: One producer and one consumer at a time

        @Test func aProducerCallInsideTheConsumersClosureAndTheReverseAreFine() throws {
            let queue = try MmapByteQueue(capacity: page)
            #expect(produce(queue, [1, 2, 3]) == 3)
            // A single thread that consumes and, meanwhile, produces: the span lent to the consumer
            // stays what was queued when it began; the new bytes wait for the next call.
            let first = queue.withReadableBytes { span in
                #expect(produce(queue, [4, 5]) == 2)
                return (consumed: span.byteCount, result: span.byteCount)
            }
            #expect(first == 3)
            // And the reverse: a producer whose closure consumes.
            queue.withWritableBytes { span in
                #expect(dequeue(queue, upTo: 8) == [4, 5])
                span.storeBytes(of: 6, toByteOffset: 0, as: UInt8.self)
                return 1
            }
            #expect(queue.count == 1)
            // A closure that throws leaves its side free for the next call.
            struct Stop: Error {}
            #expect(throws: Stop.self) {
                try queue.withReadableBytes { (_: RawSpan) throws(Stop) -> (consumed: Int, result: Void) in throw Stop()
                }
            }
            #expect(throws: Stop.self) {
                try queue.withWritableBytes { (_: inout MutableRawSpan) throws(Stop) -> Int in throw Stop() }
            }
            #expect(produce(queue, [7]) == 1)
            #expect(dequeue(queue, upTo: 8) == [6, 7])
        }

        /// A nested consumer call traps when it is made, even when the outer call then consumes
        /// nothing: before, it handed out the bytes the outer span still showed, and a producer
        /// call after it could overwrite them while the span was alive (hostile review).
        @Test func aReadInsideWithReadableBytesTrapsWhenItIsMade() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                let queue = try? MmapByteQueue(capacity: Int(sysconf(Int32(_SC_PAGESIZE))))
                _ = unsafe queue?.write([UInt8](repeating: 7, count: 10).span.bytes)
                queue?.withReadableBytes { span in
                    _ = queue.map { dequeue($0, upTo: 4) }  // the same 4 bytes are in `span`
                    return (consumed: 0, result: ())
                }
            }
            let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
            #expect(
                message.contains("MmapByteQueue.read(into:) was called while withReadableBytes(_:) was running"),
                "\(message)"
            )
        }

        @Test func aNestedWithReadableBytesTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                let queue = try? MmapByteQueue(capacity: Int(sysconf(Int32(_SC_PAGESIZE))))
                _ = unsafe queue?.write([UInt8](repeating: 7, count: 10).span.bytes)
                queue?.withReadableBytes { outer in
                    queue?.withReadableBytes { inner in (consumed: 0, result: ()) }
                    return (consumed: 0, result: ())
                }
            }
            let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
            #expect(
                message.contains("withReadableBytes(_:) was called while withReadableBytes(_:) was running"),
                "\(message)"
            )
        }

        /// A nested producer call traps when it is made, even when the outer closure then produces
        /// nothing or throws: before, the outer span overwrote the bytes it had just published.
        @Test func aWriteInsideWithWritableBytesTrapsWhenItIsMade() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                let queue = try? MmapByteQueue(capacity: Int(sysconf(Int32(_SC_PAGESIZE))))
                queue?.withWritableBytes { span in
                    _ = unsafe queue?.write([UInt8](repeating: 1, count: 3).span.bytes)
                    span.storeBytes(of: 2, toByteOffset: 0, as: UInt8.self)  // over the 3 bytes just written
                    return 0
                }
            }
            let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
            #expect(
                message.contains("MmapByteQueue.write(_:) was called while withWritableBytes(_:) was running"),
                "\(message)"
            )
        }

        /// A consumer on a second thread while the first is inside its closure: it sees the
        /// closure running and traps when it starts, before it dequeues the bytes the first one's
        /// span shows.
        @Test func aSecondConsumerThreadThatSeesTheFirstInsideItsClosureTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                guard let queue = try? MmapByteQueue(capacity: Int(sysconf(Int32(_SC_PAGESIZE)))) else { return }
                _ = unsafe queue.write([UInt8](repeating: 7, count: 100).span.bytes)
                let inside = DispatchSemaphore(value: 0)
                let secondReturned = DispatchSemaphore(value: 0)
                Thread.detach {
                    inside.wait()
                    _ = dequeue(queue, upTo: 100)  // traps here, ending the process
                    secondReturned.signal()  // only without the check: then the test fails
                }
                queue.withReadableBytes { span in
                    inside.signal()
                    secondReturned.wait()
                    return (consumed: 10, result: ())
                }
            }
            let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
            #expect(message.contains("read(into:) was called while withReadableBytes(_:) was running"), "\(message)")
            #expect(message.contains("or from a second thread of the same side"), "\(message)")
        }

        /// Two consumer threads whose plain reads overlap: the first has read the position and
        /// copied its bytes when the second dequeues everything (interleaved by the debug-only
        /// hook between reading and publishing). Storing its position then would move the
        /// consumer back behind bytes already read: it traps instead. Before the check the
        /// producer later trapped inside `MutableRawSpan.init` with a negative free space.
        @Test(.enabled(if: _MmapFaultInjection.isAvailable, "the publish hook exists in debug builds"))
        func overlappingReadsOfTwoConsumerThreadsTrapBeforeThePositionMovesBack() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                guard let queue = try? MmapByteQueue(capacity: Int(sysconf(Int32(_SC_PAGESIZE)))) else { return }
                _ = unsafe queue.write([UInt8](repeating: 7, count: 100).span.bytes)
                _MmapFaultInjection.beforeNextQueuePublish {
                    let done = DispatchSemaphore(value: 0)
                    Thread.detach {
                        _ = dequeue(queue, upTo: 100)
                        done.signal()
                    }
                    done.wait()
                }
                _ = dequeue(queue, upTo: 10)
            }
            let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
            #expect(
                message.contains("MmapByteQueue.read(into:) found the consumer position moved from byte 0 to 100"),
                "\(message)"
            )
            #expect(message.contains("a second consumer thread used the queue at once"), "\(message)")
        }

        @Test(.enabled(if: _MmapFaultInjection.isAvailable, "the publish hook exists in debug builds"))
        func overlappingWritesOfTwoProducerThreadsTrap() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                guard let queue = try? MmapByteQueue(capacity: Int(sysconf(Int32(_SC_PAGESIZE)))) else { return }
                _MmapFaultInjection.beforeNextQueuePublish {
                    let done = DispatchSemaphore(value: 0)
                    Thread.detach {
                        _ = unsafe queue.write([UInt8](repeating: 2, count: 5).span.bytes)
                        done.signal()
                    }
                    done.wait()
                }
                _ = unsafe queue.write([UInt8](repeating: 1, count: 3).span.bytes)
            }
            let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
            #expect(
                message.contains("MmapByteQueue.write(_:) found the producer position moved from byte 0 to 5"),
                "\(message)"
            )
        }

        @Test func aCapacityWhoseDoubleOverflowsIsTooLargeNotMisaligned() {
            #expect {
                _ = try MmapByteQueue(capacity: 1 << 62)
            } throws: { error in
                let error = error as? MmapError
                return error?.code == .invalidArgument && error?.message.contains("is too large") == true
            }
            #expect {
                _ = try MmapByteQueue(capacity: page + 1)
            } throws: { error in
                (error as? MmapError)?.message.contains("not a positive multiple") == true
            }
        }
    }
}

/// The size of record `index` (length prefix included): 16 to 512 bytes, from xorshift64*.
private func recordSize(_ index: Int) -> Int {
    var x = UInt64(index) &+ 0x9E37_79B9_7F4A_7C15
    x ^= x >> 12
    x ^= x << 25
    x ^= x >> 27
    return 16 + Int((x &* 0x2545_F491_4F6C_DD1D) >> 32 % 497)
}

/// Byte `i` of record `index`.
private func recordByte(_ index: Int, _ i: Int) -> UInt8 {
    UInt8(truncatingIfNeeded: index &* 131 &+ i &* 7)
}
