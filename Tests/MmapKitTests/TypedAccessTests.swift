import Foundation
import Glibc
import MmapKit
import Testing

/// The value of `size` bytes at `offset` of `bytes`, composed by hand in the given order.
private func compose(_ bytes: [UInt8], _ offset: Int, _ size: Int, bigEndian: Bool) -> UInt64 {
    var value: UInt64 = 0
    for index in 0..<size {
        let byte = UInt64(bytes[offset + (bigEndian ? index : size - 1 - index)])
        value = value << 8 | byte
    }
    return value
}

/// An enum with three values of its 256 bit patterns: conformed to `MmapScalar` here, as a
/// hostile user can, every typed access must refuse it.
private enum Shade: UInt8, MmapScalar {
    case red, green, blue
    var _mmapByteSwapped: Shade { self }
}

/// Reads `count` bytes at `offset` of the file at `path` with pread, not through a mapping.
private func preadBytes(_ path: String, _ offset: Int, _ count: Int) -> [UInt8] {
    let fd = unsafe open(path, O_RDONLY)
    defer { close(fd) }
    var out = [UInt8](repeating: 0, count: count)
    let n = unsafe out.withUnsafeMutableBytes { unsafe pread(fd, $0.baseAddress, count, off_t(offset)) }
    #expect(n == count)
    return out
}

extension MmapKitTests {
    @Suite struct TypedAccessTests {
        let directory = TemporaryDirectory()

        /// 61 bytes of a pattern in which every byte differs, so a wrong order or offset shows.
        let pattern: [UInt8] = (0..<61).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }

        @Test func loadsEveryIntegerWidthInBothByteOrdersAtUnalignedOffsets() throws {
            let path = directory.makeFile("data", bytes: pattern)
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path)
                for offset in [0, 1, 3, 7, 13, 53] {
                    for bigEndian in [false, true] {
                        let order: MmapByteOrder = bigEndian ? .bigEndian : .littleEndian
                        let b = map.bytes
                        #expect(
                            UInt64(b.load(fromByteOffset: offset, as: UInt8.self, byteOrder: order))
                                == compose(pattern, offset, 1, bigEndian: bigEndian)
                        )
                        #expect(
                            UInt64(b.load(fromByteOffset: offset, as: UInt16.self, byteOrder: order))
                                == compose(pattern, offset, 2, bigEndian: bigEndian)
                        )
                        #expect(
                            UInt64(b.load(fromByteOffset: offset, as: UInt32.self, byteOrder: order))
                                == compose(pattern, offset, 4, bigEndian: bigEndian)
                        )
                        #expect(
                            b.load(fromByteOffset: offset, as: UInt64.self, byteOrder: order)
                                == compose(pattern, offset, 8, bigEndian: bigEndian)
                        )
                        #expect(
                            UInt64(bitPattern: Int64(b.load(fromByteOffset: offset, as: Int.self, byteOrder: order)))
                                == compose(pattern, offset, 8, bigEndian: bigEndian)
                        )
                        let signed = b.load(fromByteOffset: offset, as: Int16.self, byteOrder: order)
                        #expect(UInt16(bitPattern: signed) == UInt16(compose(pattern, offset, 2, bigEndian: bigEndian)))
                        // The handle's own load is the same access.
                        let direct = map.load(fromByteOffset: offset, as: UInt32.self, byteOrder: order)
                        #expect(UInt64(direct) == compose(pattern, offset, 4, bigEndian: bigEndian))
                    }
                }
                // The last whole value of the mapping is in bounds.
                let last = map.load(fromByteOffset: pattern.count - 8, as: UInt64.self, byteOrder: .bigEndian)
                #expect(last == compose(pattern, pattern.count - 8, 8, bigEndian: true))
            }
        }

        @Test func loadsFloatingPointValuesInBothByteOrders() throws {
            var bytes = [UInt8](repeating: 0, count: 32)
            let double = -1234.5678e-9
            let float: Float = 3.25e7
            let half: Float16 = -0.375
            unsafe withUnsafeBytes(of: double.bitPattern.bigEndian) { unsafe bytes.replaceSubrange(1..<9, with: $0) }
            unsafe withUnsafeBytes(of: double.bitPattern.littleEndian) {
                unsafe bytes.replaceSubrange(9..<17, with: $0)
            }
            unsafe withUnsafeBytes(of: float.bitPattern.bigEndian) { unsafe bytes.replaceSubrange(17..<21, with: $0) }
            unsafe withUnsafeBytes(of: half.bitPattern.bigEndian) { unsafe bytes.replaceSubrange(21..<23, with: $0) }
            let path = directory.makeFile("floats", bytes: bytes)
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path)
                #expect(map.load(fromByteOffset: 1, as: Double.self, byteOrder: .bigEndian) == double)
                #expect(map.load(fromByteOffset: 9, as: Double.self, byteOrder: .littleEndian) == double)
                #expect(map.load(fromByteOffset: 17, as: Float.self, byteOrder: .bigEndian) == float)
                #expect(map.load(fromByteOffset: 21, as: Float16.self, byteOrder: .bigEndian) == half)
            }
        }

        @Test func storesReachTheFileInTheByteOrderAsked() throws {
            let path = directory.makeFile("target", count: 64)
            let before = preadBytes(path, 0, 64)
            let fd = unsafe open(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(fileDescriptor: fd)
                map.store(UInt32(0x0102_0304), toByteOffset: 3, byteOrder: .bigEndian)
                map.store(UInt32(0x0102_0304), toByteOffset: 9, byteOrder: .littleEndian)
                map.store(-2.5, toByteOffset: 17, byteOrder: .bigEndian)
                var bytes = map.mutableBytes
                bytes.store(UInt16(0xABCD), toByteOffset: 62, byteOrder: .bigEndian)
                #expect(bytes.load(fromByteOffset: 62, as: UInt16.self, byteOrder: .littleEndian) == 0xCDAB)
                try map.flush()
            }
            #expect(preadBytes(path, 3, 4) == [1, 2, 3, 4])
            #expect(preadBytes(path, 9, 4) == [4, 3, 2, 1])
            var double = [UInt8](repeating: 0, count: 8)
            unsafe withUnsafeBytes(of: (-2.5).bitPattern.bigEndian) { unsafe double = Array($0) }
            #expect(preadBytes(path, 17, 8) == double)
            #expect(preadBytes(path, 62, 2) == [0xAB, 0xCD])
            // Nothing else changed.
            let all = preadBytes(path, 0, 64)
            let touched = Set(Array(3..<7) + Array(9..<13) + Array(17..<25) + [62, 63])
            for index in all.indices where !touched.contains(index) { #expect(all[index] == before[index]) }
        }

        @Test func aTypedSpanSeesTheValuesLoadsSee() throws {
            var bytes = [UInt8](repeating: 0, count: 4096 + 16)
            for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index &* 131 &+ 7) }
            let path = directory.makeFile("words", bytes: bytes)
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path)
                let words = map.bytes.span(of: UInt64.self)
                #expect(words.count == (4096 + 16) / 8)
                for index in words.indices {
                    #expect(words[index] == map.load(fromByteOffset: index * 8, as: UInt64.self, byteOrder: .native))
                }
                // A range of it, as UInt32 values.
                let middle = map.bytes.extracting(4092..<4108).span(of: UInt32.self)
                #expect(middle.count == 4)
                #expect(middle[0] == map.load(fromByteOffset: 4092, as: UInt32.self, byteOrder: .native))
                #expect(middle[3] == map.load(fromByteOffset: 4104, as: UInt32.self, byteOrder: .native))
                // Single bytes need no alignment.
                let odd = map.bytes.extracting(3..<10).span(of: Int8.self)
                #expect(odd.count == 7 && UInt8(bitPattern: odd[0]) == bytes[3])
            }
        }

        @Test func aTypedSpanOfAnEmptyMappingIsEmpty() throws {
            let path = directory.makeFile("empty", bytes: [])
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path)
                let empty = map.bytes.span(of: Double.self).isEmpty
                #expect(empty)
            }
        }

        @Test func aMutableTypedSpanWritesTheFile() throws {
            let path = directory.makeFile("target", count: 8192)
            let before = preadBytes(path, 0, 4096)
            let fd = unsafe open(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(fileDescriptor: fd, offset: 4096)
                var words = map.mutableBytes.mutableSpan(of: UInt64.self)
                for index in words.indices { words[index] = UInt64(index) &* 0x9E37_79B9_7F4A_7C15 }
                try map.flush()
            }
            let written = preadBytes(path, 4096, 4096)
            for index in 0..<512 {
                let want = UInt64(index) &* 0x9E37_79B9_7F4A_7C15
                #expect(compose(written, index * 8, 8, bigEndian: false) == want)
            }
            #expect(preadBytes(path, 0, 4096) == before)  // the page before: untouched
        }

        @Test func viewsLoadAndStoreWithinTheirOwnRange() throws {
            let path = directory.makeFile("target", count: 8192)
            let fd = unsafe open(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                var head = try MutableMmap(fileDescriptor: fd).share()
                var tail = try head.split(at: 4096)
                tail.store(UInt64(0xFEED_FACE_CAFE_BEEF), toByteOffset: 0, byteOrder: .bigEndian)
                head.store(UInt16(0x1234), toByteOffset: 4094, byteOrder: .littleEndian)
                #expect(tail.load(fromByteOffset: 0, as: UInt64.self, byteOrder: .bigEndian) == 0xFEED_FACE_CAFE_BEEF)
                #expect(head.load(fromByteOffset: 4094, as: UInt16.self, byteOrder: .littleEndian) == 0x1234)
                let readOnly = try Mmap(fileDescriptor: fd).share()
                #expect(readOnly.load(fromByteOffset: 4096, as: UInt32.self, byteOrder: .bigEndian) == 0xFEED_FACE)
                try tail.flush()
                try head.flush()
            }
            #expect(preadBytes(path, 4094, 6) == [0x34, 0x12, 0xFE, 0xED, 0xFA, 0xCE])
        }

        @Test func theNewerHandlesLoadAndStoreToo() throws {
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            try expectNoLeaks { () throws(MmapError) in
                var reservation = try MmapReservation(count: 8 * page)
                try reservation.commit((2 * page)..<(3 * page))
                reservation.store(UInt32(0xA1B2_C3D4), toByteOffset: 2 * page + 1, byteOrder: .bigEndian)
                #expect(
                    reservation.load(fromByteOffset: 2 * page + 1, as: UInt32.self, byteOrder: .littleEndian)
                        == 0xD4C3_B2A1
                )

                // A value across the end of a mirrored ring reads the bytes from its start.
                var ring = try MmapMirroredRing(capacity: page)
                ring.store(UInt64(0x0102_0304_0506_0708), toByteOffset: page - 3, byteOrder: .bigEndian)
                #expect(ring.load(fromByteOffset: 0, as: UInt32.self, byteOrder: .bigEndian) == 0x0405_0607)
                #expect(
                    ring.load(fromByteOffset: page - 3, as: UInt64.self, byteOrder: .bigEndian) == 0x0102_0304_0506_0708
                )
            }
            let path = directory.makeFile("growable", bytes: [])
            let fd = unsafe open(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                var file = try MmapGrowableFile(fileDescriptor: fd, capacity: 16 * page)
                try file.grow(to: 100)
                file.store(Double(6.5), toByteOffset: 92, byteOrder: .littleEndian)
                #expect(file.load(fromByteOffset: 92, as: Double.self, byteOrder: .littleEndian) == 6.5)
                try file.flush()
            }
            var double = [UInt8](repeating: 0, count: 8)
            unsafe withUnsafeBytes(of: (6.5).bitPattern.littleEndian) { unsafe double = Array($0) }
            #expect(preadBytes(path, 92, 8) == double)
        }

        // MARK: - Programmer errors trap with a message

        @Test func aLoadPastTheEndTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                let map = try! MutableMmap(anonymous: 16)
                _ = map.load(fromByteOffset: 9, as: UInt64.self, byteOrder: .native)
            }
            expectMessage(result, "MmapKit: access: 8 bytes at offset 9 are outside the 16-byte mapping")
        }

        @Test func aLoadAtANegativeOffsetTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                let map = try! MutableMmap(anonymous: 16)
                _ = map.bytes.load(fromByteOffset: -1, as: UInt8.self, byteOrder: .native)
            }
            expectMessage(result, "at byte offset -1 is outside the 16 bytes")
        }

        @Test func aStorePastTheEndTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                var map = try! MutableMmap(anonymous: 16)
                map.store(UInt32(1), toByteOffset: 13, byteOrder: .bigEndian)
            }
            expectMessage(result, "MmapKit: access: 4 bytes at offset 13 are outside the 16-byte mapping")
        }

        @Test func aLoadOfUncommittedReservedMemoryTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                let page = Int(sysconf(Int32(_SC_PAGESIZE)))
                var reservation = try! MmapReservation(count: 4 * page)
                try! reservation.commit(0..<page)
                _ = reservation.load(fromByteOffset: page - 4, as: UInt64.self, byteOrder: .native)
            }
            expectMessage(result, "are not inside committed memory")
        }

        @Test func aTypeConformedToMmapScalarElsewhereTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                let map = try! MutableMmap(anonymous: 16)
                _ = map.load(fromByteOffset: 0, as: Shade.self, byteOrder: .native)
            }
            expectMessage(result, "was conformed to MmapScalar outside MmapKit")
        }

        @Test func aGuardedLoadOfAForeignScalarTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                let map = try! MutableMmap(anonymous: 16)
                _ = try? map.guardedLoad(fromByteOffset: 0, as: Shade.self)
            }
            expectMessage(result, "was conformed to MmapScalar outside MmapKit")
        }

        @Test func aTypedSpanOfAForeignScalarTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                let map = try! MutableMmap(anonymous: 16)
                _ = map.bytes.span(of: Shade.self).count
            }
            expectMessage(result, "was conformed to MmapScalar outside MmapKit")
        }

        @Test func aMisalignedTypedSpanTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                let map = try! MutableMmap(anonymous: 64)
                _ = map.bytes.extracting(4..<36).span(of: UInt64.self).count
            }
            expectMessage(result, "the bytes start 4 bytes past a 8-byte boundary; a span of UInt64 needs them aligned")
        }

        @Test func aTypedSpanOfAPartialValueTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                var map = try! MutableMmap(anonymous: 20)
                _ = map.mutableBytes.mutableSpan(of: UInt64.self).count
            }
            expectMessage(result, "20 bytes are not a whole number of UInt64 values (8 bytes each)")
        }
    }
}

/// Expects the exit test's standard error to contain `text`.
private func expectMessage(
    _ result: ExitTest.Result?,
    _ text: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let stderr = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
    #expect(stderr.contains(text), "standard error: \(stderr)", sourceLocation: sourceLocation)
}
