import Glibc
import MmapKit
import Testing

/// An error of the caller's own, to check that the closure's typed error passes through.
private struct Stop: Error, Equatable { let at: Int }

/// A noncopyable result, which `withBytes` must be able to return.
private struct Token: ~Copyable {
    let value: UInt64
}

extension MmapKitTests {
    /// `withBytes` and `withMutableBytes`: the closure-taking twins of `bytes` and
    /// `mutableBytes`, which hand the same span to a closure (and need no heap box for a local
    /// binding).
    @Suite struct ClosureSpanTests {
        let directory = TemporaryDirectory()

        @Test func withBytesSeesExactlyWhatBytesSeesOnEveryHandle() throws {
            let content = pattern(3 * 4096 + 123)
            let path = directory.makeFile("data", bytes: content)
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path, offset: 4096 + 7)
                #expect(map.withBytes { array($0) } == Array(content[(4096 + 7)...]))
                #expect(map.withBytes { array($0) } == array(map.bytes))

                var mutable = try MutableMmap(path: path, sharing: .private)
                #expect(mutable.withBytes { array($0) } == content)
                #expect(mutable.withMutableBytes { array($0.bytes) } == content)

                var view = try Mmap(path: path).share()
                let tail = try view.split(at: 5000)
                #expect(view.withBytes { array($0) } == Array(content[..<5000]))
                #expect(tail.withBytes { array($0) } == Array(content[5000...]))

                var mutableView = try MutableMmap(path: path, sharing: .private).share()
                var back = try mutableView.split(at: 4096)
                #expect(back.withMutableBytes { array($0.bytes) } == Array(content[4096...]))
                #expect(mutableView.withBytes { $0.byteCount } == 4096)
            }
        }

        @Test func writesThroughWithMutableBytesReachTheFileAndStayInsideTheHandle() throws {
            let content = pattern(2 * 4096 + 100)
            let path = directory.makeFile("data", bytes: content)
            try expectNoLeaks { () throws(MmapError) in
                // A mapping of the middle of the file: the bytes around it must not change.
                var map = try MutableMmap(path: path, offset: 4096 + 10, count: 50)
                let written = map.withMutableBytes { bytes in
                    for offset in 0..<bytes.byteCount {
                        bytes.storeBytes(of: 0xA5, toByteOffset: offset, as: UInt8.self)
                    }
                    bytes.store(UInt32(0xDEAD_BEEF), toByteOffset: 0, byteOrder: .bigEndian)
                    return bytes.byteCount
                }
                #expect(written == 50)
                try map.flush()
                var expected = content
                for offset in (4096 + 10)..<(4096 + 60) { expected[offset] = 0xA5 }
                expected.replaceSubrange((4096 + 10)..<(4096 + 14), with: [0xDE, 0xAD, 0xBE, 0xEF])
                #expect(readFile(path) == expected)
                #expect(map.withBytes { $0.load(as: UInt32.self, byteOrder: .bigEndian) } == 0xDEAD_BEEF)
            }
        }

        @Test func theClosuresTypedErrorPassesThroughAndTheHandleStaysUsable() throws {
            let path = directory.makeFile("data", bytes: pattern(4096))
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path)
                var calls = 0
                do throws(Stop) {
                    try map.withBytes { (bytes) throws(Stop) -> Void in
                        calls += 1
                        throw Stop(at: bytes.byteCount)
                    }
                    Issue.record("withBytes swallowed the closure's error")
                } catch {
                    #expect(error == Stop(at: 4096))  // `error` is a Stop: the throw is typed
                }
                #expect(calls == 1)
                #expect(map.withBytes { array($0) } == pattern(4096))

                var mutable = try MutableMmap(anonymous: 4096)
                do throws(Stop) {
                    try mutable.withMutableBytes { (bytes) throws(Stop) -> Void in
                        bytes.storeBytes(of: 7, toByteOffset: 0, as: UInt8.self)
                        throw Stop(at: 0)
                    }
                } catch {
                    #expect(error == Stop(at: 0))
                }
                // What the closure wrote before it threw is written: the call is no transaction.
                #expect(mutable.withBytes { $0.load(as: UInt8.self, byteOrder: .littleEndian) } == 7)
            }
        }

        @Test func anEmptyMappingGivesAnEmptySpanAndANoncopyableResultComesBack() throws {
            let path = directory.makeFile("empty", bytes: [])
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path)
                #expect(map.withBytes { $0.byteCount } == 0)
                var anonymous = try MutableMmap(anonymous: 0)
                #expect(anonymous.withMutableBytes { $0.byteCount } == 0)

                let data = try Mmap(path: directory.makeFile("data", bytes: pattern(64)))
                let token = data.withBytes {
                    Token(value: $0.load(fromByteOffset: 8, as: UInt64.self, byteOrder: .littleEndian))
                }
                #expect(token.value == data.load(fromByteOffset: 8, as: UInt64.self, byteOrder: .littleEndian))
            }
        }

        @Test func aGrowableFileHandsOutWhatIsMappedNowAndWritesReachTheFile() throws {
            let path = directory.makeFile("log", bytes: [])
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                var file = try MmapGrowableFile(fileDescriptor: fd, capacity: 1 << 20)
                #expect(file.withBytes { $0.byteCount } == 0)
                try file.grow(to: 5000)
                file.withMutableBytes { bytes in
                    bytes.store(UInt64(0x0102_0304_0506_0708), toByteOffset: 4990, byteOrder: .littleEndian)
                }
                #expect(file.withBytes { $0.byteCount } == 5000)
                try file.flush()
                let onDisk = readFile(path)
                #expect(onDisk.count == 5000)
                #expect(Array(onDisk[4990..<4998]) == [8, 7, 6, 5, 4, 3, 2, 1])
                #expect(file.withBytes { array($0) } == onDisk)
            }
        }

        // MARK: A span moved out of the closure

        // Swift 6.3.1 compiles `outer = span; span = MutableRawSpan()` inside the closure without
        // `unsafe` (it does not check assignments to a captured ~Escapable variable), and the
        // moved span would outlive the mapping. withMutableBytes checks on the way out that it got
        // its own span back, and traps before the caller can unmap anything.

        @Test func movingTheSpanOutOfAMappingsClosureTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                var map = try MutableMmap(anonymous: 4096)
                var outer = MutableRawSpan()
                map.withMutableBytes { span in
                    outer = span
                    span = MutableRawSpan()
                }
                outer.storeBytes(of: 1, as: UInt8.self)
            }
            let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
            #expect(message.contains("got back another span than it lent"), "\(message)")
        }

        @Test func movingTheSpanOutOfAViewsClosureTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                var view = try MutableMmap(anonymous: 8192).share()
                _ = try view.split(at: 4096)
                var outer = MutableRawSpan()
                view.withMutableBytes { span in
                    outer = span
                    span = MutableRawSpan()
                }
                outer.storeBytes(of: 1, as: UInt8.self)
            }
            let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
            #expect(message.contains("got back another span than it lent"), "\(message)")
        }

        @Test func movingTheSpanOutOfAGrowableFilesClosureTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                var name = Array("/tmp/mmapkit-lent-XXXXXX".utf8CString)
                let fd = unsafe mkstemp(&name)
                unsafe unlink(name)
                var file = try MmapGrowableFile(fileDescriptor: fd, capacity: 1 << 20)
                try file.grow(to: 4096)
                var outer = MutableRawSpan()
                file.withMutableBytes { span in
                    outer = span
                    span = MutableRawSpan()
                }
                outer.storeBytes(of: 1, as: UInt8.self)
            }
            let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
            #expect(message.contains("got back another span than it lent"), "\(message)")
        }

        @Test func movingTheSpanOutOfAByteQueuesWritableClosureTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                var outer = MutableRawSpan()
                let queue = try MmapByteQueue(capacity: Int(sysconf(Int32(_SC_PAGESIZE))))
                queue.withWritableBytes { span in
                    outer = span
                    span = MutableRawSpan()
                    return 0
                }
                outer.storeBytes(of: 1, as: UInt8.self)
            }
            let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
            #expect(message.contains("withWritableBytes"), "\(message)")
            #expect(message.contains("got back another span than it lent"), "\(message)")
        }

        @Test func consumingTheLentSpanIntoATypedSpanTrapsAndNamesTheBorrowingCall() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                var map = try MutableMmap(anonymous: 4096)
                map.withMutableBytes { span in
                    var words = span.mutableSpan(of: UInt64.self)
                    words[0] = 5
                    span = MutableRawSpan()
                }
            }
            let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
            #expect(message.contains("use mutableElements(of:)"), "\(message)")
        }

        @Test func aTypedSpanBorrowedWithMutableElementsWritesAndHandsTheSpanBack() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 4096)
                let count = map.withMutableBytes { span in
                    var words = span.mutableElements(of: UInt64.self)
                    for index in words.indices { words[index] = UInt64(index) &* 3 }
                    return span.byteCount  // whole again once words has ended
                }
                #expect(count == 4096)
                #expect(map.load(fromByteOffset: 8 * 511, as: UInt64.self, byteOrder: .native) == 511 * 3)
                let queue = try MmapByteQueue(capacity: Int(sysconf(Int32(_SC_PAGESIZE))))
                queue.withWritableBytes { span in
                    var bytes = span.mutableElements(of: UInt8.self)
                    bytes[0] = 42
                    return 1
                }
                #expect(queue.count == 1)
            }
        }

        @Test func aClosureThatKeepsItsSpanOrLendsAnEmptyOneDoesNotTrap() throws {
            var map = try MutableMmap(anonymous: 4096)
            map.withMutableBytes { span in span.storeBytes(of: 7, as: UInt8.self) }
            #expect(map.withBytes { $0.span(of: UInt8.self)[0] } == 7)
            // Nothing to leak in 0 bytes: swapping an empty span for another is left alone.
            var empty = try MutableMmap(anonymous: 0)
            var outer = MutableRawSpan()
            empty.withMutableBytes { span in
                outer = span
                span = MutableRawSpan()
            }
            #expect(outer.byteCount == 0)
        }
    }
}
