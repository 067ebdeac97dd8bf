import Dispatch
import Glibc
import MmapKit
import Synchronization
import Testing

private let page = Int(sysconf(Int32(_SC_PAGESIZE)))

extension MmapKitTests {
    @Suite struct ReservationTests {
        let directory = TemporaryDirectory()

        @Test func commitWriteDecommitRecommitReadsZeros() throws {
            let calls = try countingCalls { () throws(MmapError) in
                var reservation = try MmapReservation(count: 1 << 30)  // 1 GiB of address space, no memory
                let size = reservation.count
                #expect(size == 1 << 30)
                let base = reservation.baseAddress
                try reservation.commit((4 * page)..<(8 * page))
                var bytes = try reservation.mutableBytes(in: (4 * page)..<(8 * page))
                for i in 0..<(4 * page) {
                    bytes.storeBytes(of: UInt8(truncatingIfNeeded: i), toByteOffset: i, as: UInt8.self)
                }
                #expect(array(try reservation.bytes(in: (5 * page)..<(5 * page + 3))) == [0, 1, 2])
                try reservation.decommit((4 * page)..<(8 * page))
                let nothingCommitted = reservation.committedRanges.isEmpty
                #expect(nothingCommitted)
                try reservation.commit((4 * page)..<(8 * page))
                #expect(array(try reservation.bytes(in: (4 * page)..<(8 * page))).allSatisfy { $0 == 0 })
                let after = reservation.baseAddress
                #expect(after == base)
            }
            #expect(calls.maps == 1 && calls.unmaps == 1)
        }

        @Test func commitsOutsideOverlappingOrUnalignedAreErrors() throws {
            try expectNoLeaks { () throws(MmapError) in
                var reservation = try MmapReservation(count: 16 * page)
                try reservation.commit(page..<(4 * page))
                expectMmapError(.invalidArgument) { () throws(MmapError) in
                    try reservation.commit((3 * page)..<(5 * page))
                }
                expectMmapError(.invalidArgument) { () throws(MmapError) in try reservation.commit(0..<(2 * page)) }
                expectMmapError(.invalidArgument) { () throws(MmapError) in
                    try reservation.commit((5 * page + 1)..<(6 * page))
                }
                expectMmapError(.invalidArgument) { () throws(MmapError) in
                    try reservation.commit((6 * page)..<(6 * page))
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    try reservation.commit((15 * page)..<(17 * page))
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in try reservation.commit(-page..<0) }
                expectMmapError(.invalidArgument) { () throws(MmapError) in
                    try reservation.decommit((8 * page)..<(9 * page))
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in _ = try reservation.bytes(in: 0..<1) }
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    _ = try reservation.bytes(in: page..<(4 * page + 1))
                }
                expectMmapError(.invalidArgument) { () throws(MmapError) in _ = try MmapReservation(count: 0) }
                // Adjacent commits read as one; decommitting the middle splits them.
                try reservation.commit((4 * page)..<(6 * page))
                let joined = reservation.isCommitted(page..<(6 * page))
                #expect(joined)
                _ = try reservation.bytes(in: (2 * page)..<(5 * page))
                try reservation.decommit((3 * page)..<(5 * page))
                let ranges = reservation.committedRanges
                #expect(ranges == [page..<(3 * page), (5 * page)..<(6 * page)])
            }
        }

        @Test func aFileMappedIntoAReservationStaysWithinIt() throws {
            let path = directory.makeFile("data", count: 2 * page)
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                var reservation = try MmapReservation(count: 8 * page)
                try reservation.commit((2 * page)..<(4 * page), fileDescriptor: fd, fileOffset: 0)
                #expect(array(try reservation.bytes(in: (2 * page)..<(4 * page))) == pattern(2 * page))
                expectMmapError(.invalidArgument) { () throws(MmapError) in
                    try reservation.commit((4 * page)..<(5 * page), fileDescriptor: fd, fileOffset: 100)
                }
            }
        }

        @Test func aFileGrowsInPlaceAcrossExtensions() throws {
            let path = directory.makeFile("segment", count: 100)
            let fd = openFile(path, O_RDWR)
            let calls = try countingCalls { () throws(MmapError) in
                var file = try MmapGrowableFile(fileDescriptor: fd, capacity: 64 << 20)
                close(fd)  // the value keeps its own descriptor
                let base = file.baseAddress
                let initial = file.count
                #expect(initial == 100)
                var written = 100
                var sizes: [Int] = []
                for size in [page + 1, 3 * page, 3 * page + 17, 40 * page, 1 << 20, 5 << 20] {
                    try file.grow(to: size, allocate: size % 2 == 0)
                    var bytes = file.mutableBytes
                    for i in written..<size {
                        bytes.storeBytes(of: UInt8(truncatingIfNeeded: i &* 13), toByteOffset: i, as: UInt8.self)
                    }
                    written = size
                    let now = file.baseAddress
                    #expect(now == base, "the mapping moved")
                    sizes.append(file.count)
                }
                try file.flush()
                print("growable file: base \(String(base, radix: 16)) unchanged across sizes \(sizes)")
                expectMmapError(.invalidArgument) { () throws(MmapError) in try file.grow(to: 10) }
                expectMmapError(.invalidArgument) { () throws(MmapError) in try file.grow(to: (64 << 20) + 1) }
            }
            #expect(calls.maps == 1 && calls.unmaps == 1)
            let contents = readFile(path)
            #expect(contents.count == 5 << 20)
            #expect(Array(contents[0..<100]) == pattern(100))
            #expect(
                contents[100...].enumerated().allSatisfy {
                    $0.element == UInt8(truncatingIfNeeded: ($0.offset + 100) &* 13)
                }
            )
        }
    }

    @Suite struct MirroredRingTests {
        @Test func aByteAtIIsVisibleAtIPlusCapacity() throws {
            let calls = try countingCalls { () throws(MmapError) in
                let capacity = 16 * page
                var ring = try MmapMirroredRing(capacity: capacity)
                var window = try ring.mutableBytes(from: 0, count: capacity)
                for i in 0..<capacity {
                    window.storeBytes(of: UInt8(truncatingIfNeeded: i * 3), toByteOffset: i, as: UInt8.self)
                }
                // A window across the end reads contiguously: the tail, then the head again.
                let across = array(try ring.bytes(from: capacity - 10, count: 20))
                let expected = (0..<20).map { UInt8(truncatingIfNeeded: ((capacity - 10 + $0) % capacity) * 3) }
                #expect(across == expected)
                var last = try ring.mutableBytes(from: capacity - 1, count: capacity)
                last.storeBytes(of: 0xEE, toByteOffset: 1, as: UInt8.self)  // ring offset 0, through the mirror
                #expect(array(try ring.bytes(from: 0, count: 1)) == [0xEE])
                expectMmapError(.outOfBounds) { () throws(MmapError) in _ = try ring.bytes(from: capacity, count: 1) }
                expectMmapError(.outOfBounds) { () throws(MmapError) in _ = try ring.bytes(from: 0, count: capacity + 1)
                }
            }
            #expect(calls.maps == 1 && calls.unmaps == 1)
        }

        @Test(arguments: [0, -4096, 100, 4096 + 1, Int.max])
        func sizesThatAreNotPageMultiplesAreErrors(capacity: Int) {
            _ = expectNoLeaks {
                expectMmapError(.invalidArgument) { () throws(MmapError) in _ = try MmapMirroredRing(capacity: capacity)
                }
            }
        }

        @Test func aProducerAndAConsumerMoveOneGiBThroughA64KiBQueue() throws {
            let total = runningUnderSanitizer ? 64 << 20 : 1 << 30
            let queue = try MmapByteQueue(capacity: 64 << 10)
            let producerSum = SumBox()
            let group = DispatchGroup()
            group.enter()
            Thread.detach {
                var chunk = [UInt8](repeating: 0, count: 5000)  // not a divisor of the capacity
                var sent = 0
                var sum: UInt64 = 0
                while sent < total {
                    let length = min(chunk.count, total - sent)
                    for i in 0..<length { chunk[i] = UInt8(truncatingIfNeeded: (sent + i) &* 31 &+ 7) }
                    var offset = 0
                    while offset < length {
                        offset += queue.write(unsafe chunk.span.bytes.extracting(offset..<length))
                    }
                    for i in 0..<length { sum &+= UInt64(chunk[i]) &* UInt64(sent + i) }
                    sent += length
                }
                producerSum.value.store(sum, ordering: .releasing)
                group.leave()
            }
            var buffer = [UInt8](repeating: 0, count: 7000)
            var received = 0
            var sum: UInt64 = 0
            var mismatches = 0
            while received < total {
                var elements = buffer.mutableSpan
                var span = unsafe elements.mutableBytes
                let n = queue.read(into: &span)
                _ = consume span
                for i in 0..<n {
                    let expected = UInt8(truncatingIfNeeded: (received + i) &* 31 &+ 7)
                    if buffer[i] != expected { mismatches += 1 }
                    sum &+= UInt64(buffer[i]) &* UInt64(received + i)
                }
                received += n
            }
            group.wait()
            #expect(mismatches == 0)
            #expect(sum == producerSum.value.load(ordering: .acquiring))
            #expect(queue.count == 0)
            print("queue: \(total >> 20) MiB through a \(queue.capacity >> 10) KiB ring, checksum \(sum)")
        }
    }
}

/// A checksum handed from the producer thread to the test.
final class SumBox: Sendable {
    let value = Atomic<UInt64>(0)
}
