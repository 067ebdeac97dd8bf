import CMmapShim
import Foundation
import Glibc
import MmapKit
import Testing

/// The errnos each system call documents (minus the rows of the errno policy that trap: those
/// have exit tests below). Every call of every public path is failed with each of them.
let documentedErrnos: [_MmapFaultInjection.Call: [CInt]] = [
    .mmap: [ENOMEM, EACCES, ENODEV, EAGAIN, EOVERFLOW],
    .mmapInPlace: [ENOMEM, ENODEV],
    .munmap: [ENOMEM],
    .mprotect: [ENOMEM, EACCES],
    .msync: [EIO, ENOMEM, EBUSY],
    .madvise: [EINVAL, ENOMEM, EAGAIN, EFAULT, EIO, EPERM, EHWPOISON],
    .mlock: [ENOMEM, EAGAIN, EPERM],
    .munlock: [ENOMEM, EPERM],
    .mremap: [ENOMEM, EFAULT, EAGAIN, EINVAL],
    .mincore: [ENOMEM, EAGAIN],
    .open: [EACCES, ENOENT, EMFILE, ENXIO, ELOOP],
    .close: [EIO, EINTR],
    .fstat: [EIO, EBADF, EOVERFLOW],
    .ftruncate: [ENOSPC, EIO, EFBIG, EPERM],
    .fallocate: [ENOSPC, EDQUOT, EOPNOTSUPP, EIO],
    .fdatasync: [EIO, ENOSPC],
    .memfdCreate: [EMFILE, ENOMEM],
    .dupCloexec: [EMFILE],
    .addSeals: [EPERM, EBUSY],
    .fstatfs: [EIO, ENOSYS, EOVERFLOW],
    .getFileFlags: [EBADF],
]

/// A public path through MmapKit, from mapping to unmapping, that the sweep fails call by call.
struct FaultScenario: Sendable, CustomTestStringConvertible {
    let name: String
    let run: @Sendable (FaultFixture) throws(MmapError) -> Void

    init(_ name: String, _ run: @escaping @Sendable (FaultFixture) throws(MmapError) -> Void) {
        self.name = name
        self.run = run
    }

    var testDescription: String { name }
}

/// Files the scenarios map; each run gets fresh copies, so a failed run cannot affect the next.
final class FaultFixture: @unchecked Sendable {
    let directory = TemporaryDirectory()
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    var data: String { directory.file("data") }
    var empty: String { directory.file("empty") }

    func reset() {
        directory.makeFile("data", count: 3 * page + 100)
        directory.makeFile("empty", bytes: [])
    }

    /// Runs `body` with a read-write descriptor of `path` (opened without MmapKit).
    func withDescriptor(_ path: String, _ body: (CInt) throws(MmapError) -> Void) throws(MmapError) {
        let fd = openFile(path, O_RDWR)
        defer { close(fd) }
        try body(fd)
    }
}

let faultScenarios: [FaultScenario] = [
    FaultScenario("read-only file by path: advice, populate, lock, residency, remap, flush, unmap") {
        f throws(MmapError) in
        var map = try Mmap(path: f.data, offset: 100, options: MmapOptions().advice(.sequential))
        try map.advise(.willNeed)
        try map.advise(.dontFork, range: 10..<(2 * f.page))
        try map.populate()
        try map.lock(range: 0..<10)
        try map.unlock()
        _ = try map.residency()
        try map.flush()
        try map.flushAsync(range: 0..<10)
        try map.remap(count: 2 * f.page, mayMove: false)
        try map.unmap()
    },
    FaultScenario("parallel populate: read and write prefault split over threads") { f throws(MmapError) in
        var file = try MutableMmap(path: f.data, offset: 100)
        try file.populateForWriting(range: 10..<(2 * f.page), threads: 4)
        try file.populate(threads: 2)
        // 9 MiB: two threads really start (chunks are at least 4 MiB).
        var anonymous = try MutableMmap(anonymous: 9 << 20)
        try anonymous.populateForWriting(threads: 2)
        try anonymous.populate(range: 1..<(9 << 20), threads: 3)
        try anonymous.unmap()
    },
    FaultScenario("read-only conversions: makeMutable, makeReadOnly, makeExecutable") { f throws(MmapError) in
        let map = try Mmap(path: f.data, sharing: .private)
        let mutable = try map.makeMutable()
        _ = try mutable.makeReadOnly().makeExecutable()
    },
    FaultScenario("shared file by descriptor at an offset: write, destructive advice, grow, durable flush") {
        f throws(MmapError) in
        try f.withDescriptor(f.data) { fd throws(MmapError) in
            var map = try MutableMmap(fileDescriptor: fd, offset: 100, count: 2 * f.page)
            try map.guardedStore(UInt64(7), toByteOffset: 8)
            try map.advise(.dontNeed, range: f.page..<(2 * f.page))
            try map.advise(.populateWrite)
            try map.flush(range: 0..<8)
            try map.grow(to: 5 * f.page, fileDescriptor: fd, allocate: true)
            try map.grow(to: 6 * f.page, fileDescriptor: fd, allocate: false, mayMove: true)
            try map.flush(dataSyncing: fd)
            try map.unmap()
        }
    },
    FaultScenario("empty file: map empty, grow with options, flush") { f throws(MmapError) in
        try f.withDescriptor(f.empty) { fd throws(MmapError) in
            var map = try MutableMmap(fileDescriptor: fd, options: MmapOptions().lock().advice(.random))
            try map.grow(to: 2 * f.page, fileDescriptor: fd)
            try map.flush(dataSyncing: fd)
        }
    },
    FaultScenario("anonymous memory with options: lock, huge pages, remap, free, wipe on fork") { f throws(MmapError) in
        var map = try MutableMmap(
            anonymous: 4 * f.page,
            options: MmapOptions().populate().lock().hugePages(.transparent).advice(.random)
        )
        try map.unlock()
        try map.advise(.free, range: 0..<f.page)
        try map.advise(.wipeOnFork)
        try map.advise(.keepOnFork)
        try map.remap(count: 8 * f.page, mayMove: true)
        try map.remap(count: f.page, mayMove: false)
        _ = try map.makeReadOnly()
    },
    FaultScenario("shared anonymous memory: remove, views split and restricted") { f throws(MmapError) in
        var map = try MutableMmap(anonymous: 4 * f.page, sharing: .shared)
        try map.advise(.remove, range: f.page..<(2 * f.page))
        var head = map.share()
        var tail = try head.split(at: f.page + 10)
        try tail.restrict(to: 0..<(2 * f.page))
        try tail.advise(.dontNeed)
        try head.advise(.dontFork)
        try head.flush()
        try tail.flushAsync()
    },
    FaultScenario("read-only views of a file") { f throws(MmapError) in
        var view = try Mmap(path: f.data).share()
        let tail = try view.split(at: 10)
        try tail.advise(.random)
        try view.flush()
    },
    FaultScenario("reservation: anonymous and file commits, decommits") { f throws(MmapError) in
        try f.withDescriptor(f.data) { fd throws(MmapError) in
            var reservation = try MmapReservation(count: 16 * f.page)
            try reservation.commit(0..<(2 * f.page))
            try reservation.commit((4 * f.page)..<(6 * f.page), fileDescriptor: fd, fileOffset: 0)
            try reservation.commit((8 * f.page)..<(9 * f.page), fileDescriptor: fd, fileOffset: 0, sharing: .private)
            try reservation.decommit(f.page..<(2 * f.page))
            try reservation.decommit((4 * f.page)..<(6 * f.page))
        }
    },
    FaultScenario("growable file: open, grow allocated and sparse, flush") { f throws(MmapError) in
        try f.withDescriptor(f.data) { fd throws(MmapError) in
            var file = try MmapGrowableFile(fileDescriptor: fd, capacity: 64 * f.page)
            try file.grow(to: 6 * f.page)
            try file.grow(to: 9 * f.page + 1, allocate: false)
            try file.flush()
        }
    },
    FaultScenario("a shared file mapping stays usable after each failed call on it") { f throws(MmapError) in
        try f.withDescriptor(f.data) { fd throws(MmapError) in
            var map = try MutableMmap(fileDescriptor: fd)
            let count = map.count
            try expectIntact(map, f.data, "after mapping")
            _ = try? map.advise(.random, range: 10..<(2 * f.page))
            try expectIntact(map, f.data, "after advise")
            _ = try? map.advise(.dontFork, range: 10..<(2 * f.page))
            _ = try? map.populate()
            try expectIntact(map, f.data, "after populate")
            _ = try? map.lock(range: 0..<f.page)
            _ = try? map.unlock()
            try expectIntact(map, f.data, "after lock and unlock")
            _ = try? map.residency()
            _ = try? map.flush()
            _ = try? map.flushAsync(range: 0..<10)
            _ = try? map.advise(.dontNeed)
            _ = try? map.advise(.populateWrite, range: 0..<f.page)
            try expectIntact(map, f.data, "after flush and destructive advice")
            _ = try? map.advise(.normal)
            _ = try? map.remap(count: 2 * f.page, mayMove: false)
            _ = try? map.remap(count: count, mayMove: true)
            try expectIntact(map, f.data, "after remap")
            _ = try? map.grow(to: count, fileDescriptor: fd)
            _ = try? map.flush(dataSyncing: fd)
            try expectIntact(map, f.data, "after grow and fdatasync")
            if (try? map.unmap()) == nil { try expectIntact(map, f.data, "after a failed unmap") }
        }
    },
    FaultScenario("mirrored ring and byte queue") { f throws(MmapError) in
        var ring = try MmapMirroredRing(capacity: f.page)
        _ = try ring.mutableBytes(from: 10, count: 100)
        let queue = try MmapByteQueue(capacity: f.page)
        _ = queue.count
    },
    FaultScenario("guarded access on a growable file, a reservation and a ring") { f throws(MmapError) in
        try f.withDescriptor(f.data) { fd throws(MmapError) in
            var file = try MmapGrowableFile(fileDescriptor: fd, capacity: 16 * f.page)
            try file.grow(to: 5 * f.page, allocate: false)
            try file.guardedStoreBytes([1, 2, 3], toByteOffset: 4 * f.page)
            _ = try file.guardedBytes(0..<10)
            try file.guardedPrefault()
            var reservation = try MmapReservation(count: 8 * f.page)
            try reservation.commit(0..<f.page, fileDescriptor: fd, fileOffset: 0)
            try reservation.guardedStore(UInt32(1), toByteOffset: 8)
            _ = try reservation.guardedLoad(fromByteOffset: 8, as: UInt32.self)
            var ring = try MmapMirroredRing(capacity: f.page)
            try ring.guardedStoreBytes([1, 2, 3], toByteOffset: f.page - 1)
            _ = try ring.guardedBytes((f.page - 1)..<(f.page + 2))
        }
    },
    FaultScenario("guarded access and advice probes") { f throws(MmapError) in
        var map = try MutableMmap(path: f.data)
        try map.guardedStore(UInt32(1), toByteOffset: 0)
        _ = try map.guardedBytes(0..<10)
        try map.guardedPrefault()
        _ = MmapAdvice.cold.isSupported
        _ = MmapDestructiveAdvice.remove.isSupported
    },
]

/// Checks that `map` still reads what the file holds (guarded: a lost page is an error, not a
/// crash), after a call on it failed or succeeded.
func expectIntact(_ map: borrowing MutableMmap, _ path: String, _ label: String) throws(MmapError) {
    let file = readFile(path)
    let count = min(map.count, file.count)
    let bytes = try map.guardedBytes(0..<count)
    #expect(bytes == Array(file[0..<count]), "the mapping no longer reads the file \(label)")
}

/// The lines of `/proc/self/maps` that only MmapKit can have made here: mappings of the
/// fixture's files, memfds, and shared mappings (malloc makes none of these, so the set is
/// stable while a scenario runs).
func mmapKitMappings(_ fixture: FaultFixture) -> Set<String> {
    let maps = String(decoding: readFile("/proc/self/maps"), as: UTF8.self)
    return Set(
        maps.split(separator: "\n").map(String.init).filter { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2 else { return false }
            return line.contains(fixture.directory.path) || line.contains("memfd:") || fields[1].hasSuffix("s")
        }
    )
}

/// The result of one failed call.
struct InjectionOutcome {
    var sites = 0
    var thrown = 0
    var absorbed: Set<String> = []
}

/// Fails every call of `scenario`, one at a time, with each documented errno; checks that the
/// result is a typed error or a documented absorption, that nothing leaked, and that the process
/// is alive (a trap would end the test run).
func sweep(_ scenario: FaultScenario, fixture: FaultFixture) throws -> InjectionOutcome {
    fixture.reset()
    let baseline = try _MmapFaultInjection.calls { () throws(MmapError) in try scenario.run(fixture) }
    var outcome = InjectionOutcome()
    for (call, count) in baseline.sorted(by: { "\($0.key)" < "\($1.key)" }) {
        for index in 0..<count {
            for errno in documentedErrnos[call] ?? [EIO] {
                for removing in call == .mmapInPlace ? [false, true] : [false] {
                    fixture.reset()
                    let live = _MmapDiagnostics.liveMappings
                    let mapsBefore = mmapKitMappings(fixture)
                    _MmapFaultInjection.reset()
                    _MmapFaultInjection.inject(call, skip: index, errno: errno, removingPages: removing)
                    var thrown: MmapError? = nil
                    do throws(MmapError) {
                        try scenario.run(fixture)
                    } catch {
                        thrown = error
                    }
                    let reached = _MmapFaultInjection.callCount(call) > index
                    _MmapFaultInjection.reset()
                    Thread.joinAll()
                    guard reached else { continue }  // an earlier failure changed the path
                    outcome.sites += 1
                    let site = "\(call) #\(index) \(errnoName(errno))\(removing ? " removing" : "")"
                    let leaked = _MmapDiagnostics.liveMappings - live
                    let stillMapped = mmapKitMappings(fixture).subtracting(mapsBefore)
                    #expect(
                        // A deinit's failed munmap leaks one mapping by contract (the counter
                        // check bounds it to one; it may show as several kernel mappings).
                        stillMapped.isEmpty || (call == .munmap && thrown == nil),
                        "\(scenario.name): \(site): still in /proc/self/maps: \(stillMapped.sorted())"
                    )
                    if let thrown {
                        outcome.thrown += 1
                        #expect(thrown.errno == errno || thrown.errno == 0, "\(scenario.name): \(site): \(thrown)")
                        #expect(leaked == 0, "\(scenario.name): \(site): \(leaked) mappings leaked after \(thrown)")
                    } else {
                        outcome.absorbed.insert("\(call) \(errnoName(errno))")
                        // Absorbed by contract: a deinit's munmap (the range leaks, no one else's
                        // memory is touched), close, an advice probe, a decommit retried.
                        let allowedLeak = call == .munmap ? 1 : 0
                        #expect(leaked >= 0 && leaked <= allowedLeak, "\(scenario.name): \(site): \(leaked) leaked")
                    }
                }
            }
        }
    }
    return outcome
}

/// `"ENOMEM"`.
func errnoName(_ value: CInt) -> String {
    unsafe CMmapShim_errnoName(value).map { unsafe String(cString: $0) } ?? "errno \(value)"
}

extension MmapKitTests {
    @Suite(.enabled(if: _MmapFaultInjection.isAvailable, "fault injection exists in debug builds"))
    struct FaultInjectionTests {
        let fixture = FaultFixture()

        @Test(arguments: faultScenarios)
        func everySystemCallOfAPublicPathFailsCleanly(_ scenario: FaultScenario) throws {
            let outcome = try sweep(scenario, fixture: fixture)
            #expect(outcome.sites > 0)
            print(
                "fault injection: \(scenario.name): \(outcome.sites) failed calls, \(outcome.thrown) thrown, "
                    + "absorbed: \(outcome.absorbed.sorted().joined(separator: ", "))"
            )
        }

        @Test func everySystemCallIsReachedByTheScenarios() throws {
            var reached: Set<_MmapFaultInjection.Call> = []
            for scenario in faultScenarios {
                fixture.reset()
                let calls = try _MmapFaultInjection.calls { () throws(MmapError) in try scenario.run(fixture) }
                reached.formUnion(calls.keys)
            }
            let missing = Set(_MmapFaultInjection.Call.allCases).subtracting(reached)
            #expect(missing.isEmpty, "never called: \(missing.map(\.description).sorted())")
        }

        /// One row of the errno policy's table: a failed call and the code the caller sees.
        struct PolicyRow: Sendable, CustomTestStringConvertible {
            let call: _MmapFaultInjection.Call
            let errno: CInt
            let code: MmapError.Code
            /// How many calls in a row fail: a populate's fault is looked for again (bisection),
            /// and one that is gone by then is no error.
            var times = 1
            let run: @Sendable (FaultFixture) throws(MmapError) -> Void
            var testDescription: String { "\(call) \(errnoName(errno)) -> \(code)" }
        }

        static let policyRows: [PolicyRow] = [
            PolicyRow(call: .madvise, errno: EFAULT, code: .fault, times: 64) { f throws(MmapError) in
                try Mmap(path: f.data).populate()
            },
            // Anonymous memory in system pages that will not fault in: a guard page. (Explicit huge
            // pages are outOfMemory: ParallelPopulateTests, where a pool can be seen empty.)
            PolicyRow(call: .madvise, errno: EFAULT, code: .fault, times: 64) { f throws(MmapError) in
                try MutableMmap(anonymous: f.page).populate()
            },
            PolicyRow(call: .madvise, errno: EHWPOISON, code: .fault, times: 64) { f throws(MmapError) in
                try Mmap(path: f.data).populate()
            },
            PolicyRow(call: .mremap, errno: EFAULT, code: .unsupported) { f throws(MmapError) in
                var map = try MutableMmap(anonymous: f.page)
                try map.remap(count: 2 * f.page, mayMove: true)
            },
            PolicyRow(call: .mmap, errno: ENODEV, code: .notMappable) { f throws(MmapError) in
                _ = try Mmap(path: f.data)
            },
            PolicyRow(call: .mmap, errno: EISDIR, code: .notMappable) { f throws(MmapError) in
                _ = try Mmap(path: f.data)
            },
            PolicyRow(call: .mlock, errno: EHWPOISON, code: .fault) { f throws(MmapError) in
                try Mmap(path: f.data).lock()
            },
            PolicyRow(call: .open, errno: ENXIO, code: .notMappable) { f throws(MmapError) in _ = try Mmap(path: f.data)
            },
            PolicyRow(call: .mmap, errno: EOPNOTSUPP, code: .unsupported) { f throws(MmapError) in
                _ = try Mmap(path: f.data)
            },
            PolicyRow(call: .madvise, errno: EINVAL, code: .unsupported) { f throws(MmapError) in
                try Mmap(path: f.data).advise(.cold)
            },
            PolicyRow(call: .mlock, errno: ENOMEM, code: .lockLimit) { f throws(MmapError) in
                try Mmap(path: f.data).lock()
            },
            PolicyRow(call: .mlock, errno: EAGAIN, code: .lockLimit) { f throws(MmapError) in
                try Mmap(path: f.data).lock()
            },
            PolicyRow(call: .mlock, errno: EPERM, code: .lockLimit) { f throws(MmapError) in
                try Mmap(path: f.data).lock()
            },
            PolicyRow(call: .fallocate, errno: ENOSPC, code: .noSpace) { f throws(MmapError) in
                try f.withDescriptor(f.data) { fd throws(MmapError) in
                    var map = try MutableMmap(fileDescriptor: fd)
                    try map.grow(to: 8 * f.page, fileDescriptor: fd)
                }
            },
            PolicyRow(call: .fdatasync, errno: EDQUOT, code: .noSpace) { f throws(MmapError) in
                try f.withDescriptor(f.data) { fd throws(MmapError) in
                    try MutableMmap(fileDescriptor: fd).flush(dataSyncing: fd)
                }
            },
            PolicyRow(call: .mmap, errno: EACCES, code: .permissionDenied) { f throws(MmapError) in
                _ = try Mmap(path: f.data)
            },
            PolicyRow(call: .mprotect, errno: EPERM, code: .permissionDenied) { f throws(MmapError) in
                _ = try Mmap(path: f.data, sharing: .private).makeExecutable()
            },
            PolicyRow(call: .open, errno: EROFS, code: .permissionDenied) { f throws(MmapError) in
                _ = try MutableMmap(path: f.data)
            },
            PolicyRow(call: .mmap, errno: ETXTBSY, code: .permissionDenied) { f throws(MmapError) in
                _ = try Mmap(path: f.data)
            },
            PolicyRow(call: .mmap, errno: ENOMEM, code: .outOfMemory) { f throws(MmapError) in
                _ = try MutableMmap(anonymous: f.page)
            },
            PolicyRow(call: .munmap, errno: ENOMEM, code: .outOfMemory) { f throws(MmapError) in
                var map = try MutableMmap(anonymous: f.page)
                try map.unmap()
            },
            PolicyRow(call: .msync, errno: EIO, code: .system) { f throws(MmapError) in
                try MutableMmap(path: f.data).flush()
            },
        ]

        @Test(arguments: policyRows)
        func eachRowOfTheErrnoPolicyGivesItsCode(_ row: PolicyRow) throws {
            fixture.reset()
            try expectNoLeaks { () throws(MmapError) in
                _MmapFaultInjection.reset()
                _MmapFaultInjection.inject(row.call, times: row.times, errno: row.errno)
                defer { _MmapFaultInjection.reset() }
                let error = expectMmapError(row.code, errno: row.errno) { () throws(MmapError) in try row.run(fixture) }
                #expect(error?.message.contains(errnoName(row.errno)) == true, "\(String(describing: error))")
            }
        }

        // MARK: The rows that trap: each is an invariant of MmapKit itself.

        @Test func munmapEINVALTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                _MmapFaultInjection.inject(.munmap, errno: EINVAL)
                _ = try? MutableMmap(anonymous: 4096)
            }
            expectInvariantTrapMessage(result)
        }

        @Test func mprotectEINVALTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                _MmapFaultInjection.inject(.mprotect, errno: EINVAL)
                _ = try? MutableMmap(anonymous: 4096).makeReadOnly()
            }
            expectInvariantTrapMessage(result)
        }

        @Test func msyncEINVALTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                _MmapFaultInjection.inject(.msync, errno: EINVAL)
                try? MutableMmap(anonymous: 4096).flush()
            }
            expectInvariantTrapMessage(result)
        }

        @Test func mincoreEFAULTTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                _MmapFaultInjection.inject(.mincore, errno: EFAULT)
                _ = try? MutableMmap(anonymous: 4096).residency()
            }
            expectInvariantTrapMessage(result)
        }

        @Test func openEFAULTTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                _MmapFaultInjection.inject(.open, errno: EFAULT)
                _ = try? Mmap(path: "/proc/self/status")
            }
            expectInvariantTrapMessage(result)
        }
    }
}

/// Expects the standard error of a trapped child to carry the errno policy's message.
func expectInvariantTrapMessage(_ result: ExitTest.Result?, sourceLocation: SourceLocation = #_sourceLocation) {
    let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
    #expect(
        stderr.contains("MmapKit:") && stderr.contains("on a range MmapKit owns"),
        "\(stderr)",
        sourceLocation: sourceLocation
    )
}
