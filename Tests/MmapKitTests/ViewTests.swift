import Dispatch
import Glibc
import MmapKit
import Synchronization
import Testing

/// Moves a noncopyable value into a `@Sendable` closure that runs elsewhere, exactly once.
final class Transfer<Value: ~Copyable>: @unchecked Sendable {
    private var value: Value?
    init(_ value: consuming Value) { self.value = consume value }
    func take() -> Value { value.take()! }
}

/// Runs `body` on a new thread with `view`; the view ends on that thread.
func onThread(
    _ view: consuming MutableMmapView,
    group: DispatchGroup,
    _ body: @escaping @Sendable (inout MutableMmapView) -> Void
) {
    let transfer = Transfer(view)
    group.enter()
    Thread.detach {
        var view = transfer.take()
        body(&view)
        _ = consume view
        group.leave()
    }
}

enum Thread {
    /// Threads started by ``detach(_:)`` and not yet joined.
    private static let running = Mutex<[pthread_t]>([])

    /// Starts a pthread running `body`. It is joined by ``joinAll()``, which `expectNoLeaks`
    /// calls before it reads the live-mapping counter: a thread releases what its closure
    /// captured (views, readers) only after the body returns, so checking before the join races
    /// with that release (the cause of a flaky "a mapping leaked").
    static func detach(_ body: @escaping @Sendable () -> Void) {
        final class Box: @unchecked Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let box = unsafe Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let result = unsafe pthread_create(
            &thread,
            nil,
            { context in
                let box = unsafe Unmanaged<Box>.fromOpaque(context!).takeRetainedValue()
                box.body()
                return nil
            },
            box
        )
        precondition(result == 0, "pthread_create failed")
        running.withLock { $0.append(thread) }
    }

    /// Waits until every thread started so far has ended, and its closure has been released.
    static func joinAll() {
        while let thread = running.withLock({ $0.popLast() }) {
            let result = pthread_join(thread, nil)
            precondition(result == 0, "pthread_join failed: \(result)")
        }
    }
}

extension MmapKitTests {
    @Suite struct ViewTests {
        let directory = TemporaryDirectory()

        @Test func seedScenarioSplitAndRestrict() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 128)
                var bytes = map.mutableBytes
                for i in 0..<128 { bytes.storeBytes(of: UInt8(i), toByteOffset: i, as: UInt8.self) }
                var head = map.share()
                let tail = try head.split(at: 32)
                #expect(head.count == 32 && tail.count == 96)
                #expect(array(head.bytes) == Array(0..<32))
                #expect(array(tail.bytes) == Array(32..<128))
                try head.restrict(to: 10..<20)
                #expect(head.count == 10)
                #expect(array(head.bytes) == Array(10..<20))
            }
        }

        @Test func seedScenarioTwoThreadsWriteAndFlushTheirHalves() throws {
            let size = 128 * 1024
            let splitPoint = 66_560
            let path = directory.makeFile("data", bytes: [UInt8](repeating: 0, count: size))
            try expectNoLeaks { () throws(MmapError) in
                var first = try MutableMmap(path: path).share()
                let second = try first.split(at: splitPoint)
                let group = DispatchGroup()
                let failures = Counter()
                onThread(first, group: group) { view in
                    var bytes = view.mutableBytes
                    for i in 0..<bytes.byteCount {
                        bytes.storeBytes(of: UInt8(i % 251), toByteOffset: i, as: UInt8.self)
                    }
                    do { try view.flush() } catch { failures.add() }
                }
                onThread(second, group: group) { view in
                    var bytes = view.mutableBytes
                    for i in 0..<bytes.byteCount {
                        bytes.storeBytes(of: UInt8((splitPoint + i) % 241), toByteOffset: i, as: UInt8.self)
                    }
                    do { try view.flush() } catch { failures.add() }
                }
                group.wait()
                #expect(failures.value == 0)
            }
            let expected = (0..<size).map { $0 < splitPoint ? UInt8($0 % 251) : UInt8($0 % 241) }
            #expect(readFile(path) == expected)
        }

        @Test func manyThreadsOwnDisjointViewsAndTheLastOneUnmaps() throws {
            let threads = 16
            let chunk = 10_007  // not a page multiple: neighbours share pages
            let path = directory.makeFile("data", bytes: [UInt8](repeating: 0, count: threads * chunk))
            let calls = try countingCalls { () throws(MmapError) in
                var rest = try MutableMmap(path: path).share()
                let group = DispatchGroup()
                let failures = Counter()
                for index in 0..<threads {
                    let piece = try rest.split(at: chunk)
                    let mine = rest  // [index * chunk, (index + 1) * chunk)
                    rest = piece
                    onThread(mine, group: group) { view in
                        var bytes = view.mutableBytes
                        for i in 0..<bytes.byteCount {
                            bytes.storeBytes(of: UInt8(index + 1), toByteOffset: i, as: UInt8.self)
                        }
                        do { try view.flush() } catch { failures.add() }
                    }
                }
                #expect(rest.count == 0)
                _ = consume rest
                group.wait()
                #expect(failures.value == 0)
            }
            // One map; the one unmap happened on whichever thread dropped the last view.
            #expect(calls.maps == 1 && calls.unmaps == 1)
            let contents = readFile(path)
            #expect(contents == (0..<(threads * chunk)).map { UInt8($0 / chunk + 1) })
        }

        @Test func aDroppedViewKeepsTheMappingForTheOthers() throws {
            let calls = try countingCalls { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 8192)
                unsafe map.withUnsafeMutableBytes { unsafe $0.copyBytes(from: pattern(8192)) }
                var head = map.share()
                var tail = try head.split(at: 4096)
                let before = _MmapDiagnostics.unmapCalls
                _ = consume head
                #expect(_MmapDiagnostics.unmapCalls == before)
                #expect(array(tail.bytes) == Array(pattern(8192)[4096...]))
                var bytes = tail.mutableBytes
                bytes.storeBytes(of: 1, toByteOffset: 0, as: UInt8.self)
            }
            #expect(calls.maps == 1 && calls.unmaps == 1)
        }

        @Test func badSplitAndRestrictArgumentsAreErrors() throws {
            try expectNoLeaks { () throws(MmapError) in
                var view = try Mmap(path: directory.makeFile("data", count: 100)).share()
                let split = expectMmapError(.outOfBounds) { () throws(MmapError) in _ = try view.split(at: 101) }
                #expect(split?.operation == .split)
                #expect(split?.description.hasPrefix("split: ") == true)
                expectMmapError(.outOfBounds) { () throws(MmapError) in _ = try view.split(at: -1) }
                let restrict = expectMmapError(.outOfBounds) { () throws(MmapError) in
                    try view.restrict(to: 50..<101)
                }
                #expect(restrict?.operation == .restrict)
                #expect(restrict?.description.hasPrefix("restrict: ") == true)
                expectMmapError(.outOfBounds) { () throws(MmapError) in try view.restrict(to: -1..<5) }
                expectMmapError(.outOfBounds) { () throws(MmapError) in try view.advise(.willNeed, range: 0..<101) }
                let empty = try view.split(at: 100)
                #expect(empty.count == 0)
                #expect(view.count == 100)
                try view.restrict(to: 100..<100)
                let isEmpty = view.isEmpty
                #expect(isEmpty)
            }
        }

        @Test func aViewFlushesARangeOfItselfAndRefusesOneOutsideIt() throws {
            let path = directory.makeFile("data", count: 3 * 4096)
            try expectNoLeaks { () throws(MmapError) in
                var view = try MutableMmap(path: path).share()
                var tail = try view.split(at: 4096 + 10)
                var bytes = tail.mutableBytes
                bytes.storeBytes(of: 0xAB, toByteOffset: 5, as: UInt8.self)
                try tail.flush(range: 0..<100)
                try tail.flushAsync(range: 4000..<tail.count)
                try tail.flush(range: 7..<7)
                let failure = expectMmapError(.outOfBounds) { () throws(MmapError) in
                    try tail.flush(range: 0..<(tail.count + 1))
                }
                #expect(failure?.operation == .flush)
                expectMmapError(.outOfBounds) { () throws(MmapError) in try view.flushAsync(range: -1..<3) }
            }
            #expect(readFile(path)[4096 + 15] == 0xAB)
        }

        @Test func readOnlyViewsReadFlushAndAdvise() throws {
            let path = directory.makeFile("data", count: 20_000)
            try expectNoLeaks { () throws(MmapError) in
                var view = try Mmap(path: path, offset: 100).share()
                var tail = try view.split(at: 9_000)
                try tail.restrict(to: 1000..<2000)
                #expect(array(tail.bytes) == Array(pattern(20_000)[10_100..<11_100]))
                #expect(unsafe view.withUnsafeBytes { $0.count } == 9_000)
                try view.flush()
                try tail.flushAsync()
                try view.advise(.sequential)
                try tail.advise(.willNeed, range: 10..<20)
            }
        }

        @Test func destructiveAdviceOnAViewNeverTouchesANeighboursPage() throws {
            try expectNoLeaks { () throws(MmapError) in
                let page = Int(sysconf(Int32(_SC_PAGESIZE)))
                var map = try MutableMmap(anonymous: 4 * page)
                unsafe map.withUnsafeMutableBytes { unsafe $0.copyBytes(from: pattern(4 * page)) }
                var head = map.share()
                var tail = try head.split(at: page + 100)  // page 1 is shared by both views
                try tail.advise(.dontNeed)
                // Only pages 2 and 3, wholly inside the tail, were dropped.
                #expect(array(head.bytes) == Array(pattern(4 * page)[0..<(page + 100)]))
                let tailBytes = array(tail.bytes)
                #expect(Array(tailBytes[0..<(page - 100)]) == Array(pattern(4 * page)[(page + 100)..<(2 * page)]))
                #expect(tailBytes[(page - 100)...].allSatisfy { $0 == 0 })
                try head.advise(.dontNeed)
                #expect(
                    Array(array(tail.bytes)[0..<(page - 100)]) == Array(pattern(4 * page)[(page + 100)..<(2 * page)])
                )
                #expect(array(head.bytes)[0..<page].allSatisfy { $0 == 0 })
            }
        }
    }
}

/// A thread-safe counter for failures seen on other threads.
final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    func add() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}
