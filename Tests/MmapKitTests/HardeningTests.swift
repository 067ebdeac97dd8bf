import Foundation
import Glibc
import MmapKit
import Testing

/// The kernel's flags for the mapping that holds `address` (`VmFlags` in `/proc/self/smaps`):
/// "rr" random read, "lo" locked, "dc" do not copy on fork, ...
func vmFlags(at address: UInt) -> [String] {
    let smaps = String(decoding: readFile("/proc/self/smaps"), as: UTF8.self)  // size 0: read(2) it
    var inside = false
    for line in smaps.split(separator: "\n") {
        if let dash = line.firstIndex(of: "-"), line.first?.isHexDigit == true,
            let space = line.firstIndex(of: " "),
            let low = UInt(line[..<dash], radix: 16), let high = UInt(line[line.index(after: dash)..<space], radix: 16)
        {
            inside = (low..<high).contains(address)
        } else if inside, line.hasPrefix("VmFlags:") {
            return line.dropFirst("VmFlags:".count).split(separator: " ").map(String.init)
        }
    }
    return []
}

/// The address ranges of `/proc/self/maps`.
func procMaps() -> [Range<UInt>] {
    let maps = String(decoding: readFile("/proc/self/maps"), as: UTF8.self)
    return maps.split(separator: "\n").compactMap { line in
        let bounds = line.prefix { $0 != " " }.split(separator: "-")
        guard bounds.count == 2, let low = UInt(bounds[0], radix: 16), let high = UInt(bounds[1], radix: 16) else {
            return nil
        }
        return low..<high
    }
}

/// Whether every byte of `range` is inside some mapping of the process.
func isMapped(_ range: Range<UInt>) -> Bool {
    var position = range.lowerBound
    for mapping in procMaps().sorted(by: { $0.lowerBound < $1.lowerBound }) where mapping.upperBound > position {
        guard mapping.lowerBound <= position else { return false }
        position = mapping.upperBound
        if position >= range.upperBound { return true }
    }
    return position >= range.upperBound
}

/// A small tmpfs mounted for one test (CI runs as root), unmounted when the value is released.
final class SmallFileSystem: @unchecked Sendable {
    let directory = TemporaryDirectory()
    let mounted: Bool

    init(bytes: Int) {
        mounted = unsafe mount("tmpfs", directory.path, "tmpfs", 0, "size=\(bytes)") == 0
    }

    var path: String { directory.path }

    deinit {
        if mounted { _ = unsafe umount2(directory.path, CInt(MNT_DETACH)) }
    }
}

/// Whether this process may mount file systems (root in CI).
let canMount: Bool = SmallFileSystem(bytes: 1 << 20).mounted

extension MmapKitTests {
    /// One regression test per defect of the issue "Hardening II" (numbers in the names' comments).
    @Suite struct HardeningTests {
        let directory = TemporaryDirectory()
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))

        // MARK: 1. Remap and grow after advice or locking on part of a mapping

        @Test func remapAfterAdviceOnPartOfTheMappingThrowsAClearErrorAndSucceedsOnceMerged() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 16 * page)
                try map.advise(.random, range: page..<(2 * page))  // splits the kernel mapping
                let error = expectMmapError(.unsupported, errno: EFAULT) { () throws(MmapError) in
                    try map.remap(count: 64 * page, mayMove: true)
                }
                #expect(error?.message.contains("split") == true)
                #expect(map.count == 16 * page)
                try map.remap(count: 8 * page, mayMove: false)  // shrinking works across the split
                try map.advise(.normal)  // the same advice everywhere: the kernel merges again
                try map.remap(count: 64 * page, mayMove: true)
                #expect(map.count == 64 * page)
            }
        }

        @Test(.disabled(if: runningUnderSanitizer, "sanitizers make mlock(2) a no-op"))
        func growAfterLockingPartOfAFileMappingThrowsAClearError() throws {
            let path = directory.makeFile("data", count: 4 * page)
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(fileDescriptor: fd)
                try map.lock(range: 0..<page)
                expectMmapError(.unsupported, errno: EFAULT) { () throws(MmapError) in
                    try map.grow(to: 64 * page, fileDescriptor: fd)
                }
                try map.unlock()
                try map.grow(to: 64 * page, fileDescriptor: fd)
                #expect(map.count == 64 * page)
                #expect(array(map.bytes.extracting(0..<(4 * page))) == pattern(4 * page))
            }
        }

        // MARK: 2. Destructive advice never changes a byte outside the handle

        @Test func destructiveAdviceOnAnUnalignedSharedFileMappingKeepsTheFileOutsideIt() throws {
            let size = 6 * page
            let path = directory.makeFile("data", count: size)
            let original = pattern(size)
            try expectNoLeaks { () throws(MmapError) in
                // Bytes [100, 100 + 3 pages + 50): pages 0 and 3 are shared with file data outside.
                let lower = 100
                let count = 3 * page + 50
                var map = try MutableMmap(path: path, offset: Int64(lower), count: count)
                let neighbour = try Mmap(path: path)
                for advice in [MmapDestructiveAdvice.remove, .dontNeed, .populateWrite] where advice.isSupported {
                    try? map.advise(advice)
                }
                let file = readFile(path)
                #expect(Array(file[0..<lower]) == Array(original[0..<lower]), "bytes before the handle")
                #expect(Array(file[(lower + count)...]) == Array(original[(lower + count)...]), "bytes after it")
                #expect(array(neighbour.bytes.extracting(0..<lower)) == Array(original[0..<lower]))
                // The whole pages inside the handle were punched (MADV_REMOVE).
                if MmapDestructiveAdvice.remove.isSupported {
                    #expect(Array(file[page..<(3 * page)]) == [UInt8](repeating: 0, count: 2 * page))
                }
            }
        }

        @Test func destructiveAdviceOnAViewKeepsTheNeighbourViewAndTheFile() throws {
            let size = 4 * page
            let path = directory.makeFile("data", count: size)
            let original = pattern(size)
            try expectNoLeaks { () throws(MmapError) in
                var head = try MutableMmap(path: path, offset: 10, count: size - 10).share()
                var tail = try head.split(at: page + 7)
                try tail.advise(.remove)
                try head.advise(.remove, range: 0..<(page + 7))
                let file = readFile(path)
                #expect(Array(file[0..<10]) == Array(original[0..<10]), "before the mapping")
                // Page 1 holds the end of `head` and the start of `tail`: neither may punch it.
                #expect(Array(file[page..<(2 * page)]) == Array(original[page..<(2 * page)]))
                #expect(array(head.bytes) == Array(original[10..<(page + 17)]))
            }
        }

        @Test func destructiveAdviceOnAnonymousMemoryStillCoversItsOwnPadding() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 2 * page + 100)
                var bytes = map.mutableBytes
                for i in stride(from: 0, to: bytes.byteCount, by: 64) {
                    bytes.storeBytes(of: 0xAB, toByteOffset: i, as: UInt8.self)
                }
                try map.advise(.dontNeed)  // the last page's padding is nobody else's data
                #expect(array(map.bytes).allSatisfy { $0 == 0 })
            }
        }

        // MARK: 3. A failed commit never leaves a hole in a reservation

        @Test func aCommitOfASocketIsRefusedBeforeAnyPageIsTouched() throws {
            var pair: [CInt] = [0, 0]
            #expect(unsafe socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0, &pair) == 0)
            defer { for fd in pair { close(fd) } }
            try expectNoLeaks { () throws(MmapError) in
                var reservation = try MmapReservation(count: 8 * page)
                let whole = reservation.baseAddress..<(reservation.baseAddress + UInt(8 * page))
                expectMmapError(.notMappable) { () throws(MmapError) in
                    try reservation.commit(page..<(2 * page), fileDescriptor: pair[0], fileOffset: 0)
                }
                #expect(isMapped(whole))
                #expect(reservation.committedRanges.isEmpty)
                try reservation.commit(page..<(2 * page))
            }
        }

        @Test(.enabled(if: _MmapFaultInjection.isAvailable, "fault injection exists in debug builds"))
        func aCommitThatFailsAfterTheKernelRemovedThePagesIsRepaired() throws {
            let path = directory.makeFile("data", count: 4 * page)
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                var reservation = try MmapReservation(count: 8 * page)
                let range = reservation.baseAddress..<(reservation.baseAddress + UInt(8 * page))
                _MmapFaultInjection.inject(.mmapInPlace, errno: ENODEV, removingPages: true)
                let error = expectMmapError(.notMappable, errno: ENODEV) { () throws(MmapError) in
                    try reservation.commit(0..<(4 * page), fileDescriptor: fd, fileOffset: 0)
                }
                _MmapFaultInjection.reset()
                #expect(error?.operation == .commit)
                #expect(isMapped(range), "the reservation has a hole")
                #expect(reservation.committedRanges.isEmpty)
                // Nothing else could have landed there: a new anonymous mapping lands elsewhere.
                let other = try MutableMmap(anonymous: 4 * page)
                let otherStart = unsafe other.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
                #expect(!range.contains(otherStart))
                try reservation.commit(0..<(4 * page), fileDescriptor: fd, fileOffset: 0)
                #expect(array(try reservation.bytes(in: 0..<(4 * page))) == pattern(4 * page))
            }
        }

        @Test(.enabled(if: _MmapFaultInjection.isAvailable, "fault injection exists in debug builds"))
        func aDecommitThatFailsKeepsThePagesUnlessTheKernelRemovedThemAndThenCompletes() throws {
            try expectNoLeaks { () throws(MmapError) in
                var reservation = try MmapReservation(count: 8 * page)
                try reservation.commit(0..<(4 * page))
                var bytes = try reservation.mutableBytes(in: page..<(2 * page))
                bytes.storeBytes(of: 42, toByteOffset: 0, as: UInt8.self)
                _MmapFaultInjection.inject(.mmapInPlace, errno: ENOMEM)  // fails before removing anything
                let error = expectMmapError(.outOfMemory, errno: ENOMEM) { () throws(MmapError) in
                    try reservation.decommit(page..<(2 * page))
                }
                _MmapFaultInjection.reset()
                #expect(error?.operation == .decommit)
                #expect(reservation.committedRanges == [0..<(4 * page)])
                let kept = unsafe try reservation.bytes(in: page..<(2 * page)).unsafeLoad(as: UInt8.self)
                #expect(kept == 42)
                _MmapFaultInjection.inject(.mmapInPlace, errno: ENOMEM, removingPages: true)
                try reservation.decommit(0..<page)  // the kernel removed them: the hole is reserved again
                _MmapFaultInjection.reset()
                #expect(reservation.committedRanges == [page..<(4 * page)])
                let base = reservation.baseAddress
                #expect(isMapped(base..<(base + UInt(8 * page))), "the reservation has a hole")
            }
        }

        @Test(.enabled(if: _MmapFaultInjection.isAvailable, "fault injection exists in debug builds"))
        func aHoleTakenByAnotherOwnerIsGivenUpAndThatOwnersPageSurvivesTheReservation() throws {
            let page = self.page
            var strangerAddress: UInt = 0
            try expectNoLeaks { () throws(MmapError) in
                var reservation = try MmapReservation(count: 4 * page)
                let hole = reservation.baseAddress + UInt(page)
                // The commit removes the pages and fails; the repair finds the place taken.
                _MmapFaultInjection.inject(.mmapInPlace, times: 2, errno: ENODEV, removingPages: true)
                let error = expectMmapError(.notMappable) { () throws(MmapError) in
                    try reservation.commit(page..<(2 * page))
                }
                _MmapFaultInjection.reset()
                #expect(error?.message.contains("no longer part of the reservation") == true)
                // Another owner maps the hole now; the reservation must never touch it again.
                let stranger = unsafe mmap(
                    UnsafeMutableRawPointer(bitPattern: hole),
                    page,
                    PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | 0x10_0000,  // MAP_FIXED_NOREPLACE
                    -1,
                    0
                )
                #expect(unsafe stranger == UnsafeMutableRawPointer(bitPattern: hole))
                unsafe stranger?.storeBytes(of: 0xCD, as: UInt8.self)
                strangerAddress = hole
                expectMmapError(.invalidArgument) { () throws(MmapError) in try reservation.commit(page..<(2 * page)) }
                try reservation.commit(0..<page)
            }
            // The reservation is gone, the stranger's page is not.
            #expect(isMapped(strangerAddress..<(strangerAddress + UInt(page))))
            let survived = unsafe UnsafeRawPointer(bitPattern: strangerAddress)!.load(as: UInt8.self)
            #expect(survived == 0xCD)
            _ = unsafe munmap(UnsafeMutableRawPointer(bitPattern: strangerAddress), page)
        }

        // MARK: 4. Growth of anonymous memory into a file is refused

        @Test func growingAnonymousMemoryIntoAFileIsRefusedAndTheFileIsUntouched() throws {
            let path = directory.makeFile("data", count: 100)
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                for count in [0, page] {
                    var map = try MutableMmap(anonymous: count)
                    expectMmapError(.invalidArgument) { () throws(MmapError) in
                        try map.grow(to: 2 * page, fileDescriptor: fd)
                    }
                    #expect(map.count == count)
                }
            }
            #expect(readFile(path) == pattern(100))
        }

        // MARK: 5. A path with a NUL byte is refused

        @Test func aPathWithANulByteIsRefused() throws {
            let path = directory.makeFile("data", count: 100)
            directory.makeFile("data2", count: 100)
            try expectNoLeaks { () throws(MmapError) in
                for candidate in [path + "\0", directory.path + "/data2\0/../data", "\0"] {
                    expectMmapError(.invalidArgument, errno: 0) { () throws(MmapError) in
                        _ = try MutableMmap(path: candidate)
                    }
                    expectMmapError(.invalidArgument, errno: 0) { () throws(MmapError) in
                        _ = try Mmap(path: candidate)
                    }
                }
            }
        }

        // MARK: 6. Locking pages past the end of the file says so

        @Test(.disabled(if: runningUnderSanitizer, "sanitizers make mlock(2) a no-op"))
        func lockingPagesPastTheEndOfTheFileReportsAFaultNotTheLimit() throws {
            let path = directory.makeFile("data", count: page)
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path, count: 4 * page)
                let error = expectMmapError(.fault, errno: ENOMEM) { () throws(MmapError) in try map.lock() }
                #expect(error?.message.contains("past the end of the file") == true)
                #expect(error?.message.contains("RLIMIT_MEMLOCK") == false)
                try map.lock(range: 0..<page)
                try map.unlock()
            }
        }

        // MARK: 7. A failed munmap hands the mapping back

        @Test(.enabled(if: _MmapFaultInjection.isAvailable, "fault injection exists in debug builds"))
        func aFailedUnmapKeepsTheHandleUsableAndARetryUnmapsOnce() throws {
            try expectNoLeaks { () throws(MmapError) in
                let calls = try countingCalls { () throws(MmapError) in
                    var map = try MutableMmap(anonymous: 3 * page)
                    var bytes = map.mutableBytes
                    bytes.storeBytes(of: 7, toByteOffset: page, as: UInt8.self)
                    _MmapFaultInjection.inject(.munmap, errno: ENOMEM)
                    let error = expectMmapError(.outOfMemory, errno: ENOMEM) { () throws(MmapError) in
                        try map.unmap()
                    }
                    #expect(error?.operation == .unmap)
                    #expect(map.count == 3 * page)
                    let kept = unsafe map.bytes.unsafeLoad(fromByteOffset: page, as: UInt8.self)
                    #expect(kept == 7)
                    try map.unmap()
                    #expect(map.count == 0)
                    try map.unmap()  // an empty handle unmaps nothing
                }
                #expect(calls.maps == 1 && calls.unmaps == 1)
            }
        }

        // MARK: 8. The SIGBUS guard survives a signal sent while the old disposition was SIG_IGN

        @Test(.disabled(if: runningUnderThreadSanitizer, "TSan cannot recover from SIGBUS"))
        func theGuardStaysInstalledAfterAnIgnoredSentSIGBUS() async {
            await #expect(processExitsWith: .success) {
                let page = Int(sysconf(Int32(_SC_PAGESIZE)))
                signal(SIGBUS, SIG_IGN)
                let directory = TemporaryDirectory()
                let map = try truncatedFileMapping(in: directory, by: truncateThroughAnotherDescriptor)
                _ = try map.guardedLoad(fromByteOffset: 0, as: UInt8.self)  // installs the guard
                kill(getpid(), SIGBUS)  // ignored, as SIG_IGN says
                kill(getpid(), SIGBUS)
                do throws(MmapError) {
                    _ = try map.guardedLoad(fromByteOffset: 8 * page, as: UInt8.self)
                    exit(3)  // the page is lost: this must not read
                } catch {
                    exit(error.code == .fault ? 0 : 4)
                }
            }
        }

        // MARK: 9. MmapByteQueue.count from a third thread

        @Test func aQueueCountReadFromAThirdThreadStaysWithinZeroAndTheCapacity() throws {
            let queue = try MmapByteQueue(capacity: 4 * page)
            let rounds = 20_000
            let outOfRange = Counter()
            let done = Counter()
            Thread.detach {
                let chunk = [UInt8](repeating: 1, count: 3000)
                for _ in 0..<rounds { _ = unsafe queue.write(chunk.span.bytes) }
                done.add()
            }
            Thread.detach {
                var buffer = [UInt8](repeating: 0, count: 3000)
                while done.value == 0 || queue.count > 0 {
                    var elements = buffer.mutableSpan
                    var bytes = unsafe elements.mutableBytes
                    _ = queue.read(into: &bytes)
                }
            }
            while done.value == 0 {
                let count = queue.count
                if count < 0 || count > queue.capacity { outOfRange.add() }
            }
            Thread.joinAll()
            #expect(outOfRange.value == 0)
            #expect(queue.count == 0)
        }

        // MARK: 10. dontFork on a view leaves the neighbour's page to the child

        @Test func dontForkOnAViewLeavesTheNeighbourReadableInAChild() throws {
            try expectNoLeaks { () throws(MmapError) in
                var head = try MutableMmap(anonymous: 2 * page).share()
                var tail = try head.split(at: 100)
                unsafe tail.withUnsafeMutableBytes { unsafe $0[0] = 1 }
                unsafe head.withUnsafeMutableBytes { unsafe $0[0] = 42 }
                try tail.advise(.dontFork)
                let address = unsafe head.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
                #expect(!vmFlags(at: address).contains("dc"), "the head's page must stay forkable")
                #expect(vmFlags(at: address + UInt(page)).contains("dc"), "the tail's own page is not forked")
                let child = fork()
                if child == 0 {
                    let value = unsafe head.withUnsafeBytes { unsafe $0[0] }
                    _exit(value == 42 ? 0 : 1)
                }
                var status: CInt = 0
                unsafe waitpid(child, &status, 0)
                #expect(status == 0, "the child could not read the neighbour's byte (status \(status))")
            }
        }

        // MARK: 11. A guarded load of an empty mapping

        @Test func aGuardedLoadOfAnEmptyMappingIsOutOfBoundsAndReadsNothing() throws {
            try expectNoLeaks { () throws(MmapError) in
                let map = try MutableMmap(anonymous: 0)
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    _ = try map.guardedLoad(fromByteOffset: 0, as: UInt8.self)
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    _ = try map.guardedLoad(fromByteOffset: 1, as: UInt8.self)
                }
            }
        }

        // MARK: 12. Growing shared anonymous memory is refused

        @Test func growingSharedAnonymousMemoryIsRefusedAndShrinkingWorks() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 4 * page, sharing: .shared)
                let error = expectMmapError(.unsupported) { () throws(MmapError) in
                    try map.remap(count: 8 * page, mayMove: true)
                }
                #expect(error?.message.contains("no backing") == true)
                try map.remap(count: 2 * page, mayMove: false)
                #expect(map.count == 2 * page)
                var privateMap = try MutableMmap(anonymous: 4 * page)
                try privateMap.remap(count: 8 * page, mayMove: true)
                unsafe privateMap.withUnsafeMutableBytes { unsafe $0[8 * page - 1] = 1 }
            }
        }

        // MARK: 13. Smaller defects

        @Test func populateFaultsReportTheFirstLostPage() throws {
            try expectNoLeaks { () throws(MmapError) in
                let map = try truncatedFileMapping(in: directory, by: truncateThroughAnotherDescriptor)
                let error = expectMmapError(.fault) { () throws(MmapError) in try map.populate() }
                let surviving = 4 * page + 100  // truncatedFileMapping keeps this many bytes
                #expect(error?.faultOffset == (surviving + page - 1) / page * page)
                try map.populate(range: 0..<surviving)
            }
        }

        @Test func growingAnEmptyMappingToZeroIsANoOpAndGrowthKeepsTheOptions() throws {
            let path = directory.makeFile("empty", bytes: [])
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(fileDescriptor: fd, options: MmapOptions().advice(.random))
                try map.grow(to: 0, fileDescriptor: fd)
                #expect(map.count == 0)
                try map.grow(to: 3 * page, fileDescriptor: fd)
                let address = unsafe map.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
                #expect(vmFlags(at: address).contains("rr"), "MADV_RANDOM from the options was applied")
            }
        }

        @Test func residencyOfAHugeSparseReservationRangeIsRefusedNotAllocated() throws {
            try expectNoLeaks { () throws(MmapError) in
                var huge = try MutableMmap(anonymous: 1 << 40, options: MmapOptions().noReserve())
                expectMmapError(.invalidArgument) { () throws(MmapError) in _ = try huge.residency() }
                #expect(try huge.residency(range: 0..<(1 << 30)).pageCount == (1 << 30) / page)
                try huge.unmap()
            }
        }

        @Test func aUnixSocketPathIsNotMappable() throws {
            let path = directory.file("socket")
            let fd = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            unsafe withUnsafeMutableBytes(of: &address.sun_path) { buffer in
                for (i, byte) in path.utf8.enumerated() { unsafe buffer[i] = byte }
            }
            let bound = unsafe withUnsafePointer(to: &address) {
                unsafe $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    unsafe bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            #expect(bound == 0)
            expectMmapError(.notMappable, errno: ENXIO) { () throws(MmapError) in _ = try Mmap(path: path) }
        }

        // MARK: Found by the model: destructive advice over locked pages, fault offsets

        @Test(.disabled(if: runningUnderSanitizer, "sanitizers make mlock(2) a no-op"))
        func destructiveAdviceOverLockedPagesIsRefusedBeforeAnyPageIsDropped() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 3 * page)
                unsafe map.withUnsafeMutableBytes { bytes in
                    for i in 0..<bytes.count { unsafe bytes[i] = 1 }
                }
                try map.lock(range: page..<(2 * page))
                for advice in [MmapDestructiveAdvice.dontNeed, .free] where advice.isSupported {
                    let error = expectMmapError(.invalidArgument, errno: EINVAL) { () throws(MmapError) in
                        try map.advise(advice)
                    }
                    #expect(error?.message.contains("locked") == true)
                    #expect(array(map.bytes).allSatisfy { $0 == 1 }, "a page before the locked one was dropped")
                }
                try map.unlock()
                try map.advise(.dontNeed)
                #expect(array(map.bytes).allSatisfy { $0 == 0 })
            }
        }

        @Test(.disabled(if: runningUnderThreadSanitizer, "TSan cannot recover from SIGBUS"))
        func aGuardedCopyReportsTheFirstByteOfTheFaultingPage() throws {
            try expectNoLeaks { () throws(MmapError) in
                let map = try truncatedFileMapping(in: directory, by: truncateThroughAnotherDescriptor)
                // glibc's memcpy of 8 to 16 bytes loads the last 8 first.
                for range in [(8 * page)..<(8 * page + 12), (5 * page - 4)..<(5 * page + 8)] {
                    let error = expectMmapError(.fault) { () throws(MmapError) in _ = try map.guardedBytes(range) }
                    let expected = max(range.lowerBound, (range.upperBound - 1) / page * page)
                    #expect(error?.faultOffset == expected, "\(range)")
                }
            }
        }

        // MARK: Found by the hostile review

        @Test func flushDataSyncingOfADescriptorThatCannotSyncThrowsInsteadOfTrapping() throws {
            var fds: [CInt] = [0, 0]
            #expect(unsafe pipe(&fds) == 0)
            defer { for fd in fds { close(fd) } }
            try expectNoLeaks { () throws(MmapError) in
                let map = try MutableMmap(anonymous: page)
                let error = expectMmapError(.system, errno: EINVAL) { () throws(MmapError) in
                    try map.flush(dataSyncing: fds[1])
                }
                #expect(error?.operation == .dataSync)
                let devNull = openFile("/dev/null", O_RDWR)
                defer { close(devNull) }
                expectMmapError(.system, errno: EINVAL) { () throws(MmapError) in try map.flush(dataSyncing: devNull) }
            }
        }

        @Test(.disabled(if: runningUnderSanitizer, "sanitizers make mlock(2) a no-op"))
        func theLockedPageCheckHoldsUnderMlockall() async {
            await #expect(processExitsWith: .success) {
                let page = Int(sysconf(Int32(_SC_PAGESIZE)))
                guard mlockall(MCL_CURRENT | MCL_FUTURE) == 0 else { exit(2) }
                var map = try MutableMmap(anonymous: 3 * page)
                unsafe map.withUnsafeMutableBytes { bytes in
                    for i in 0..<bytes.count { unsafe bytes[i] = 0xAB }
                }
                try map.unlock(range: 0..<(2 * page))
                do throws(MmapError) {
                    try map.advise(.dontNeed)
                    exit(3)
                } catch {
                    guard error.code == .invalidArgument else { exit(4) }
                }
                exit(array(map.bytes).allSatisfy { $0 == 0xAB } ? 0 : 5)
            }
        }

        @Test(
            .enabled(if: _MmapFaultInjection.isAvailable, "fault injection exists in debug builds"),
            .disabled(if: runningUnderSanitizer, "sanitizers make mlock(2) a no-op")
        )
        func aFailingLockedPageCheckRefusesTheAdviceAndChangesNothing() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 3 * page)
                unsafe map.withUnsafeMutableBytes { bytes in
                    for i in 0..<bytes.count { unsafe bytes[i] = 0xAB }
                }
                try map.lock(range: (2 * page)..<(3 * page))
                _MmapFaultInjection.inject(.mmap, errno: ENOMEM)  // the scratch page of the check
                expectMmapError(.outOfMemory) { () throws(MmapError) in try map.advise(.dontNeed) }
                _MmapFaultInjection.reset()
                #expect(array(map.bytes).allSatisfy { $0 == 0xAB })
                expectMmapError(.invalidArgument) { () throws(MmapError) in try map.advise(.dontNeed) }
                #expect(array(map.bytes).allSatisfy { $0 == 0xAB })
            }
        }

        @Test(.disabled(if: runningUnderThreadSanitizer, "TSan cannot recover from SIGBUS"))
        func faultOffsetsOfViewsLocksAndMapOptionsNameTheFirstLostByteOfTheHandle() throws {
            let path = directory.makeFile("data", count: 3 * page)
            try expectNoLeaks { () throws(MmapError) in
                var head = try MutableMmap(path: path).share()
                var tail = try head.split(at: page)
                #expect(unsafe truncate(path, off_t(2 * page)) == 0)
                let populate = expectMmapError(.fault) { () throws(MmapError) in try tail.advise(.populateRead) }
                #expect(populate?.faultOffset == page, "view-relative")
                let write = expectMmapError(.fault) { () throws(MmapError) in try tail.advise(.populateWrite) }
                #expect(write?.faultOffset == page)
            }
            let short = directory.makeFile("short", count: page)
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: short, count: 3 * page)
                if !runningUnderSanitizer {
                    let lock = expectMmapError(.fault) { () throws(MmapError) in try map.lock() }
                    #expect(lock?.faultOffset == page)
                }
                let option = expectMmapError(.fault) { () throws(MmapError) in
                    _ = try Mmap(path: short, count: 3 * page, options: MmapOptions().advice(.populateRead))
                }
                #expect(option?.faultOffset == page)
            }
        }

        @Test(.enabled(if: _MmapFaultInjection.isAvailable, "fault injection exists in debug builds"))
        func aReservationWhosePagesTheKernelTookAndCouldNotRestoreGivesThemUpWithoutATrap() throws {
            try expectNoLeaks { () throws(MmapError) in
                var reservation = try MmapReservation(count: 8 * page)
                let base = reservation.baseAddress
                try reservation.commit(0..<(2 * page))
                _MmapFaultInjection.inject(.mmapInPlace, times: 2, errno: ENOMEM, removingPages: true)
                let error = expectMmapError(.outOfMemory) { () throws(MmapError) in
                    try reservation.decommit(0..<page)
                }
                _MmapFaultInjection.reset()
                #expect(error?.message.contains("no longer part of the reservation") == true)
                #expect(reservation.committedRanges == [page..<(2 * page)])
                #expect(!isMapped(base..<(base + UInt(page))))
                expectMmapError(.invalidArgument) { () throws(MmapError) in try reservation.commit(0..<page) }
                try reservation.commit((4 * page)..<(5 * page))
                // Whatever lands in the hole now is someone else's and survives the reservation.
                _ = reservation
            }
        }

        // MARK: Found by the second hostile review

        @Test(.enabled(if: _MmapFaultInjection.isAvailable, "fault injection exists in debug builds"))
        func aReservationWhoseEveryPageWasLostIsStillCountedOnceWhenItEnds() throws {
            try expectNoLeaks { () throws(MmapError) in
                var reservation = try MmapReservation(count: page)
                _MmapFaultInjection.inject(.mmapInPlace, times: 2, errno: ENOMEM, removingPages: true)
                expectMmapError(.outOfMemory) { () throws(MmapError) in try reservation.commit(0..<page) }
                _MmapFaultInjection.reset()
            }
        }

        @Test(.enabled(if: _MmapFaultInjection.isAvailable, "fault injection exists in debug builds"))
        func aReservationWithALostRangeThatCannotUnmapAPieceLeaksItAndStaysCounted() throws {
            let live = _MmapDiagnostics.liveMappings
            var base: UInt = 0
            do {
                var reservation = try MmapReservation(count: 3 * page)
                base = reservation.baseAddress
                _MmapFaultInjection.inject(.mmapInPlace, times: 2, errno: ENOMEM, removingPages: true)
                expectMmapError(.outOfMemory) { () throws(MmapError) in
                    try reservation.commit(page..<(2 * page))
                }
                _MmapFaultInjection.inject(.munmap, errno: ENOMEM)  // the first piece, in deinit
            }
            _MmapFaultInjection.reset()
            // As for any deinit whose munmap fails: the piece leaks, and the reservation stays
            // counted, so the counter and /proc/self/maps agree.
            #expect(_MmapDiagnostics.liveMappings == live + 1)
            #expect(isMapped(base..<(base + UInt(page))), "the piece that could not be unmapped")
            #expect(!isMapped((base + UInt(2 * page))..<(base + UInt(3 * page))), "the piece that was")
            // Unmap what the test leaked on purpose (outside MmapKit: the counter keeps the +1, as
            // the contract says for a deinit whose munmap failed; other tests compare relatively).
            _ = unsafe munmap(UnsafeMutableRawPointer(bitPattern: base), page)
        }

        @Test(.enabled(if: _MmapFaultInjection.isAvailable, "fault injection exists in debug builds"))
        func aLockRefusedByTheLimitDoesNotReadTheWholeFileFirst() throws {
            let path = directory.makeFile("data", count: 64 * page)
            let fd = openFile(path, O_RDONLY)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(fileDescriptor: fd)
                _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
                let before = try map.residency().residentCount
                _MmapFaultInjection.inject(.mlock, errno: ENOMEM)  // as RLIMIT_MEMLOCK refuses
                expectMmapError(.lockLimit, errno: ENOMEM) { () throws(MmapError) in try map.lock() }
                _MmapFaultInjection.reset()
                let after = try map.residency().residentCount
                #expect(after - before <= 1, "the check read \(after - before) pages (one is enough)")
            }
        }

        @Test(.enabled(if: _MmapFaultInjection.isAvailable, "fault injection exists in debug builds"))
        func aLockedPageCheckThatCannotAnswerRefusesTheAdvice() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 4 * page)
                unsafe map.withUnsafeMutableBytes { bytes in
                    for i in 0..<bytes.count { unsafe bytes[i] = 0x5A }
                }
                for errno in [EAGAIN, ENOMEM, EIO, EPERM] {
                    _MmapFaultInjection.inject(.madvise, errno: errno)  // the MADV_COLD check itself
                    let error = expectMmapError(errno == EAGAIN || errno == ENOMEM ? .outOfMemory : .system) {
                        () throws(MmapError) in try map.advise(.dontNeed)
                    }
                    #expect(error?.message.contains("Nothing was changed") == true)
                    _MmapFaultInjection.reset()
                    #expect(array(map.bytes).allSatisfy { $0 == 0x5A })
                }
                _MmapFaultInjection.inject(.madvise, skip: 1, errno: EIO)  // the scratch page's question
                try? map.lock(range: (3 * page)..<(4 * page))
                if !runningUnderSanitizer {
                    expectMmapError(.outOfMemory) { () throws(MmapError) in try map.advise(.dontNeed) }
                    #expect(array(map.bytes).allSatisfy { $0 == 0x5A })
                }
                _MmapFaultInjection.reset()
            }
        }

        // MARK: 14. A full disk

        @Test(.enabled(if: canMount, "needs root to mount a tmpfs"))
        func allocatedGrowthOnAFullDiskThrowsNoSpaceAndKeepsTheMapping() throws {
            let disk = SmallFileSystem(bytes: 1 << 20)
            let path = disk.path + "/log"
            _ = FileManager.default.createFile(atPath: path, contents: Data(pattern(page)))
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(fileDescriptor: fd)
                let error = expectMmapError(.noSpace, errno: ENOSPC) { () throws(MmapError) in
                    try map.grow(to: 4 << 20, fileDescriptor: fd)
                }
                #expect(error?.operation == .grow)
                #expect(map.count == page)
                #expect(array(map.bytes) == pattern(page))
                try map.flush(dataSyncing: fd)
                try map.grow(to: 16 * page, fileDescriptor: fd)  // what fits still grows
                #expect(map.count == 16 * page)
            }
        }

        @Test(
            .enabled(if: canMount, "needs root to mount a tmpfs"),
            .disabled(if: runningUnderThreadSanitizer, "TSan cannot recover from SIGBUS")
        )
        func sparseGrowthOnAFullDiskFaultsOnWriteAndResumesOnceSpaceIsFreed() throws {
            let disk = SmallFileSystem(bytes: 64 * page)
            let path = disk.path + "/log"
            let filler = disk.path + "/filler"
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            _ = FileManager.default.createFile(atPath: filler, contents: Data(count: 60 * page))
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(fileDescriptor: fd)
                try map.grow(to: 32 * page, fileDescriptor: fd, allocate: false)  // sparse: no blocks
                var written = 0
                var fault: MmapError? = nil
                while written < 32 {
                    do throws(MmapError) {
                        try map.guardedStore(UInt64(written + 1), toByteOffset: written * page)
                        written += 1
                    } catch {
                        fault = error
                        break
                    }
                }
                #expect(fault?.code == .fault)
                #expect(fault?.faultOffset == written * page)
                #expect(written > 0 && written < 32)
                for i in 0..<written {
                    #expect(try map.guardedLoad(fromByteOffset: i * page, as: UInt64.self) == UInt64(i + 1))
                }
                try map.flush()  // what was written stays flushable after the disk filled
                unsafe #expect(unlink(filler) == 0)
                try map.guardedStore(UInt64(99), toByteOffset: written * page)
                #expect(try map.guardedLoad(fromByteOffset: written * page, as: UInt64.self) == 99)
            }
        }
    }
}
