import Dispatch
import Foundation
import Glibc
import MmapKit
import Testing

extension MmapKitTests {
    /// Every path that ends a mapping, checked by counting maps and unmaps.
    @Suite struct ExactlyOnceTests {
        let directory = TemporaryDirectory()

        @Test func scopeEndUnmapsOnce() throws {
            let calls = try countingCalls { () throws(MmapError) in
                _ = try MutableMmap(anonymous: 4096)
                let map = try Mmap(path: directory.makeFile("data", count: 10))
                _ = map.count
            }
            #expect(calls.maps == 2 && calls.unmaps == 2)
        }

        @Test func everyConsumingConversionUnmapsOnce() throws {
            let calls = try countingCalls { () throws(MmapError) in
                var anonymous = try MutableMmap(anonymous: 4096)
                try anonymous.unmap()
                var file = try Mmap(path: directory.makeFile("a", count: 10))
                try file.unmap()
                _ = try MutableMmap(anonymous: 4096).makeReadOnly().makeMutable().makeExecutable()
                _ = try Mmap(path: directory.makeFile("b", count: 10), sharing: .private).makeMutable()
                _ = try MutableMmap(anonymous: 4096).makeExecutable()
            }
            #expect(calls.maps == 5 && calls.unmaps == 5)
        }

        // A failed conversion (makeMutable of a shared read-only mapping) is counted in
        // MmapTests.makeMutableOfASharedMapOfAReadOnlyDescriptorFailsAndUnmapsOnce.

        @Test func aThrowingInitializerLeavesNothingMapped() {
            // The mapping succeeds, then the initial advice (prefault past the end of the file)
            // fails: the mapping must be unmapped before the throw.
            let path = directory.makeFile("data", count: 4096)
            let calls = countingCalls {
                expectMmapError(.fault, errno: EFAULT) { () throws(MmapError) in
                    _ = try Mmap(path: path, count: 16 * 4096, options: MmapOptions().advice(.populateRead))
                }
            }
            #expect(calls.maps == 1 && calls.unmaps == 1)
        }

        @Test func remapNeitherMapsNorUnmaps() throws {
            let calls = try countingCalls { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 4096)
                for size in [1 << 20, 4096, 1 << 24, 100] { try map.remap(count: size, mayMove: true) }
            }
            #expect(calls.maps == 1 && calls.unmaps == 1)
        }

        @Test(arguments: [0, 1, 2, 3, 4, 5])
        func viewsDroppedInAnyOrderUnmapOnce(order: Int) throws {
            let permutations = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]
            let calls = try countingCalls { () throws(MmapError) in
                var a = try MutableMmap(anonymous: 3 * 4096).share()
                var b = try a.split(at: 4096)
                let c = try b.split(at: 4096)
                let holder = ViewHolder(a, b, c)
                for index in permutations[order] {
                    let before = _MmapDiagnostics.unmapCalls
                    holder.drop(index)
                    let last = index == permutations[order].last
                    #expect(_MmapDiagnostics.unmapCalls == before + (last ? 1 : 0))
                }
            }
            #expect(calls.maps == 1 && calls.unmaps == 1)
        }

        @Test func viewsDroppedOnOtherThreadsUnmapOnce() throws {
            let calls = try countingCalls { () throws(MmapError) in
                for _ in 0..<50 {
                    var head = try MutableMmap(anonymous: 8192).share()
                    let tail = try head.split(at: 100)
                    let group = DispatchGroup()
                    onThread(head, group: group) { _ in }
                    onThread(tail, group: group) { _ in }
                    group.wait()
                }
            }
            #expect(calls.maps == 50 && calls.unmaps == 50)
        }
    }

    @Suite struct StressTests {
        @Test func manyThreadsMapTouchAndUnmapWithoutLeaks() throws {
            let threads = 8
            let iterations = 500
            func run() {
                DispatchQueue.concurrentPerform(iterations: threads) { thread in
                    for i in 0..<iterations {
                        do {
                            var map = try MutableMmap(anonymous: 4096 * (1 + (i + thread) % 16))
                            var bytes = map.mutableBytes
                            bytes.storeBytes(of: UInt8(truncatingIfNeeded: i), toByteOffset: 0, as: UInt8.self)
                            if i % 3 == 0 {
                                var view = map.share()
                                _ = try view.split(at: view.count / 2)
                            }
                        } catch {
                            Issue.record("\(error)")
                        }
                    }
                }
            }
            run()  // warm-up: worker threads, their stacks and malloc arenas exist from here on
            let mappings = _MmapDiagnostics.liveMappings
            let lines = mapsLineCount()
            let calls = countingCalls { run() }
            #expect(calls.maps == threads * iterations && calls.unmaps == threads * iterations)
            #expect(_MmapDiagnostics.liveMappings == mappings)
            #expect(mapsLineCount() == lines)
            print(
                "stress: \(threads) threads x \(iterations) map/touch/unmap cycles, /proc/self/maps \(lines) lines before and after"
            )
        }
    }

    @Suite struct DurabilityTests {
        @Test func flushedBytesSurviveAChildKilledWithSIGKILL() async throws {
            let path = "/tmp/mmapkit-durability-\(getpid())"
            defer { unsafe unlink(path) }
            await #expect(processExitsWith: .signal(SIGKILL)) {
                try writeFlushAndDie(path: "/tmp/mmapkit-durability-\(getppid())")
            }
            let contents = readFile(path)
            #expect(contents.count == 1 << 20)
            #expect(contents == (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 * 7) })
        }
    }
}

/// Three views held so that a test can drop them one at a time in a chosen order.
final class ViewHolder: @unchecked Sendable {
    private var views: [Int: Transfer<MutableMmapView>] = [:]
    init(_ a: consuming MutableMmapView, _ b: consuming MutableMmapView, _ c: consuming MutableMmapView) {
        views[0] = Transfer(a)
        views[1] = Transfer(b)
        views[2] = Transfer(c)
    }
    func drop(_ index: Int) {
        _ = views.removeValue(forKey: index)!.take()
    }
}

/// The number of lines in /proc/self/maps (one per mapping region).
func mapsLineCount() -> Int {
    readFile("/proc/self/maps").split(separator: UInt8(ascii: "\n")).count
}

/// In a child process: writes 1 MiB through a shared mapping of `path`, flushes, and kills
/// itself with SIGKILL.
func writeFlushAndDie(path: String) throws(MmapError) {
    let fd = unsafe open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0o644)
    precondition(fd >= 0 && ftruncate(fd, 1 << 20) == 0)
    var map = try MutableMmap(fileDescriptor: fd)
    var bytes = map.mutableBytes
    for i in 0..<(1 << 20) { bytes.storeBytes(of: UInt8(truncatingIfNeeded: i * 7), toByteOffset: i, as: UInt8.self) }
    try map.flush()
    kill(getpid(), SIGKILL)
}
