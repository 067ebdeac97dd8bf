import Foundation
import Glibc
import MmapKit
import Testing

extension MmapKitTests {
    /// `populate(range:threads:)` and `populateForWriting(range:threads:)` (issue 15): the range
    /// is split over threads in C; the result must be the single-threaded populate's, page for
    /// page and error for error.
    @Suite struct ParallelPopulateTests {
        let directory = TemporaryDirectory()
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        /// 4 MiB chunks at least: 40 MiB lets 8 threads (and 2) really run.
        let large = 40 << 20

        // MARK: Anonymous memory

        @Test(arguments: [1, 2, 8])
        func populatesAWholeAnonymousMappingForWriting(threads: Int) throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: large + 3 * page + 5)
                try map.advise(.noHugePage)  // count 4 KiB pages, whatever THP is set to
                #expect(try map.residency().residentCount == 0)
                try map.populateForWriting(threads: threads)
                let residency = try map.residency()
                #expect(residency.isFullyResident, "\(residency.residentCount) of \(residency.pageCount)")
                let edges = array(map.bytes.extracting(0..<page)) + array(map.bytes.extracting((large - page)...))
                #expect(edges.allSatisfy { $0 == 0 }, "contents unchanged")
            }
        }

        @Test(arguments: [1, 2, 8])
        func populatesAWholeAnonymousMappingForReading(threads: Int) throws {
            try expectNoLeaks { () throws(MmapError) in
                let map = try MutableMmap(anonymous: large)
                try map.advise(.noHugePage)
                try map.populate(threads: threads)
                // MADV_POPULATE_READ maps the shared zero page: present, so resident for mincore.
                #expect(try map.residency().isFullyResident)
            }
        }

        @Test func populatesExactlyThePagesOfASubRange() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: large)
                try map.advise(.noHugePage)
                let pages = large / page
                // Aligned: [8 MiB, 20 MiB) on 2 threads is two 6 MiB chunks.
                let aligned = (8 << 20)..<(20 << 20)
                try map.populateForWriting(range: aligned, threads: 2)
                #expect(
                    Array(try map.residency().residentRuns) == [
                        (aligned.lowerBound / page)..<(aligned.upperBound / page)
                    ]
                )
                // Unaligned, for writing: only the whole pages inside the range.
                try map.advise(.dontNeed)
                let unaligned = (page + 10)..<(30 << 20 + 100)
                try map.populateForWriting(range: unaligned, threads: 8)
                #expect(Array(try map.residency().residentRuns) == [2..<((30 << 20) / page)])
                // Unaligned, for reading: every page the range touches (a hint is widened).
                try map.advise(.dontNeed)
                try map.populate(range: unaligned, threads: 8)
                #expect(Array(try map.residency().residentRuns) == [1..<((30 << 20) / page + 1)])
                // Empty ranges change nothing, wherever they are.
                try map.advise(.dontNeed)
                for empty in [0..<0, (5 * page + 3)..<(5 * page + 3), large..<large] {
                    try map.populate(range: empty, threads: 8)
                    try map.populateForWriting(range: empty, threads: 8)
                }
                // A range that holds no whole page prefaults nothing for writing.
                try map.populateForWriting(range: (page + 1)..<(2 * page - 1), threads: 2)
                #expect(try map.residency().residentCount == 0)
                #expect(pages == large / page)
            }
        }

        @Test func moreThreadsThanPagesIsFine() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 3 * page)
                try map.populateForWriting(threads: 64)
                #expect(try map.residency().isFullyResident)
                let one = try MutableMmap(anonymous: 1)
                try one.populate(threads: 1000)
                #expect(try one.residency().isFullyResident)
                let empty = try MutableMmap(anonymous: 0)
                try empty.populate(threads: 8)
            }
        }

        @Test func rangesOutsideTheMappingAreErrors() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 2 * page)
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    try map.populate(range: 0..<(2 * page + 1), threads: 2)
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    try map.populateForWriting(range: -1..<1, threads: 2)
                }
            }
        }

        // MARK: Files

        @Test(arguments: [1, 2, 8])
        func populatesAnEvictedFileForReading(threads: Int) throws {
            let count = (9 << 20) + 123  // two 4 MiB chunks at most: the file pattern is slow to make
            let path = directory.makeFile("data", count: count)
            let fd = openFile(path, O_RDONLY)
            defer { close(fd) }
            fdatasync(fd)
            #expect(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0)
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(fileDescriptor: fd, offset: 100)
                try map.populate(threads: threads)
                #expect(try map.residency().isFullyResident)
                #expect(array(map.bytes) == Array(pattern(count)[100...]))
            }
        }

        @Test func populatesASharedFileForWritingWithoutChangingIt() throws {
            let count = (9 << 20) + 7
            let path = directory.makeFile("data", count: count)
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(path: path)
                try map.populateForWriting(threads: 4)
                #expect(try map.residency().isFullyResident)
                try map.flush()
            }
            #expect(readFile(path) == pattern(count))
        }

        @Test(arguments: [2, 8])
        func aTruncatedFileGivesTheSingleThreadedError(threads: Int) throws {
            // 16 MiB: up to four chunks, the second, third and fourth failing (the lowest is reported).
            let path = directory.makeFile("data", count: 16 << 20)
            let surviving = (5 << 20) + 100
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path)
                var writable = try MutableMmap(path: path)
                #expect(unsafe truncate(path, off_t(surviving)) == 0)
                let single = expectMmapError(.fault, errno: EFAULT) { () throws(MmapError) in try map.populate() }
                let parallel = expectMmapError(.fault, errno: EFAULT) { () throws(MmapError) in
                    try map.populate(threads: threads)
                }
                let firstLostPage = (surviving + page - 1) / page * page
                #expect(single?.faultOffset == firstLostPage)
                #expect(parallel?.faultOffset == firstLostPage)
                #expect(parallel?.operation == .advise)
                let write = expectMmapError(.fault, errno: EFAULT) { () throws(MmapError) in
                    try writable.populateForWriting(threads: threads)
                }
                #expect(write?.faultOffset == firstLostPage)
                // What the file still backs populates, and the handles stay usable.
                try map.populate(range: 0..<surviving, threads: threads)
                try writable.populateForWriting(range: 0..<firstLostPage, threads: threads)
                #expect(array(map.bytes.extracting(0..<surviving)) == pattern(surviving))
            }
        }

        // MARK: Failures that are not a truncated file

        /// Explicit huge pages mapped with noReserve while the pool has none free: the populate
        /// fails with EFAULT (access would raise SIGBUS), which for anonymous memory is running
        /// out of memory, not a file that shrank.
        @Test(
            .enabled(if: hugePagePoolIsEmpty, "needs 2 MiB huge pages, none free and no overcommit"),
            arguments: [1, 2]
        )
        func anEmptyHugePagePoolUnderANoReserveMappingIsOutOfMemory(threads: Int) throws {
            try expectNoLeaks { () throws(MmapError) in
                let options = MmapOptions().hugePages(.explicit2MiB).noReserve()
                var map = try MutableMmap(anonymous: 16 << 20, options: options)
                let read = expectMmapError(.outOfMemory, errno: EFAULT) { () throws(MmapError) in
                    try map.populate(threads: threads)
                }
                #expect(read?.message.contains("no huge page could back byte 0: the pool has none free") == true)
                #expect(read?.faultOffset == nil)
                let write = expectMmapError(.outOfMemory, errno: EFAULT) { () throws(MmapError) in
                    try map.populateForWriting(threads: threads)
                }
                #expect(
                    write?.message.contains("no huge page could back byte 0") == true,
                    "\(String(describing: write))"
                )
            }
        }

        /// A sparse file on a full tmpfs: the page is inside the file, but the file system cannot
        /// provide it. The kernel reports it as it reports a truncated file (EFAULT), so the error
        /// is a fault whose message names both causes, at the first page that could not be had.
        @Test(.enabled(if: canMount, "needs root to mount a tmpfs"), arguments: [1, 2])
        func aFullTmpfsUnderASparseFileIsAFaultThatNamesBothCauses(threads: Int) throws {
            let small = SmallFileSystem(bytes: 1 << 20)
            let path = small.path + "/sparse"
            #expect(FileManager.default.createFile(atPath: path, contents: nil))
            #expect(unsafe truncate(path, 12 << 20) == 0)
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(path: path)
                let error = expectMmapError(.fault, errno: EFAULT) { () throws(MmapError) in
                    try map.populateForWriting(threads: threads)
                }
                #expect(error?.message.contains("shorter than the mapping") == true)
                #expect(error?.message.contains("a full tmpfs") == true, "\(String(describing: error))")
                // One thread fills the file system in order; two may take pages of the second
                // chunk first, so the first page that fails can only be lower.
                let offset = error?.faultOffset ?? -1
                #expect(threads == 1 ? offset == 1 << 20 : (0...(1 << 20)).contains(offset), "\(offset)")
                #expect(offset % page == 0)
            }
            var status = stat()
            #expect(unsafe stat(path, &status) == 0 && status.st_size == 12 << 20, "the file keeps its size")
        }

        /// A guard page (MADV_GUARD_INSTALL, Linux 6.13) inside anonymous memory: a populate
        /// fails with EFAULT there, which is not memory running out.
        @Test(.enabled(if: guardPagesAreSupported, "needs MADV_GUARD_INSTALL (Linux 6.13)"))
        func aGuardPageInAnonymousMemoryIsAFaultAtItsOffset() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 16 * page)
                let installed = unsafe map.withUnsafeMutableBytes { bytes in
                    unsafe madvise(bytes.baseAddress! + 8 * page, page, madvGuardInstall)
                }
                #expect(installed == 0)
                let error = expectMmapError(.fault, errno: EFAULT) { () throws(MmapError) in try map.populate() }
                #expect(error?.faultOffset == 8 * page)
                #expect(error?.message.contains("a guard page") == true, "\(String(describing: error))")
                try map.populate(range: 0..<(8 * page))
                // The same in a file mapping, whose message names it among the causes.
                let path = directory.makeFile("guarded", count: 16 * page)
                var file = try MutableMmap(path: path)
                let installedInFile = unsafe file.withUnsafeMutableBytes { bytes in
                    unsafe madvise(bytes.baseAddress! + 8 * page, page, madvGuardInstall)
                }
                #expect(installedInFile == 0)
                let fileError = expectMmapError(.fault, errno: EFAULT) { () throws(MmapError) in try file.populate() }
                #expect(fileError?.faultOffset == 8 * page)
                #expect(
                    fileError?.message.contains("or it is a guard page") == true,
                    "\(String(describing: fileError))"
                )
            }
        }

        /// A populate whose failure is gone when the first failing page is looked for (a file
        /// truncated and grown back meanwhile; here one injected EFAULT): the whole range
        /// populates on the second try, so the call succeeds. Before, it threw a fault at the
        /// mapping's last page, which had never failed.
        @Test(.enabled(if: _MmapFaultInjection.isAvailable, "fault injection exists in debug builds"))
        func aFaultGoneWhenLookedForAgainIsNoError() throws {
            defer { _MmapFaultInjection.reset() }
            let path = directory.makeFile("data", count: 64 * page)
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path)
                for threads in [1, 2] {
                    _MmapFaultInjection.reset()
                    _MmapFaultInjection.inject(.madvise, errno: EFAULT)
                    try map.populate(threads: threads)
                    #expect(_MmapFaultInjection.callCount(.madvise) == 2, "the failed call, then the whole range again")
                }
                #expect(array(map.bytes) == pattern(64 * page))
            }
        }

        // MARK: Fault injection and programmer errors

        @Test func anInjectedMadviseFailureFailsTheParallelCallAndLeavesTheHandleUsable() throws {
            guard _MmapFaultInjection.isAvailable else { return }
            defer { _MmapFaultInjection.reset() }
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: large)
                for (errno, code) in [(ENOMEM, MmapError.Code.outOfMemory), (EINVAL, .unsupported), (EIO, .system)] {
                    _MmapFaultInjection.reset()
                    _MmapFaultInjection.inject(.madvise, errno: errno)
                    let write = expectMmapError(code, errno: errno) { () throws(MmapError) in
                        try map.populateForWriting(threads: 8)
                    }
                    #expect(write?.operation == .advise)
                    #expect(_MmapFaultInjection.callCount(.madvise) == 1, "checked once, on the calling thread")
                    _MmapFaultInjection.inject(.madvise, errno: errno)
                    expectMmapError(code, errno: errno) { () throws(MmapError) in try map.populate(threads: 2) }
                }
                _MmapFaultInjection.reset()
                try map.populateForWriting(threads: 8)
                #expect(try map.residency().isFullyResident)
                var bytes = map.mutableBytes
                bytes.storeBytes(of: 42, toByteOffset: large - 1, as: UInt8.self)
                #expect(array(map.bytes)[large - 1] == 42)
            }
        }

        @Test func zeroThreadsTraps() async {
            let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
                try? MutableMmap(anonymous: 4096).populate(threads: 0)
            }
            let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
            #expect(message.contains("needs at least 1 thread"), "\(message)")
        }

        @Test func negativeThreadsForWritingTraps() async {
            await #expect(processExitsWith: .failure) {
                var map = try? MutableMmap(anonymous: 4096)
                try? map?.populateForWriting(threads: -1)
            }
        }
    }
}

/// Whether the 2 MiB huge page pool has no free page and may not overcommit, so that a populate
/// of explicit huge pages mapped with noReserve must fail.
let hugePagePoolIsEmpty: Bool = {
    let meminfo = String(decoding: readFile("/proc/meminfo"), as: UTF8.self)
    let overcommit = String(decoding: readFile("/proc/sys/vm/nr_overcommit_hugepages"), as: UTF8.self)
    let lines = meminfo.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
    let free = lines.first { $0.first == "HugePages_Free:" }?.last
    let size = lines.first { $0.first == "Hugepagesize:" }.map { $0.dropFirst().joined(separator: " ") }
    return free == "0" && size == "2048 kB" && overcommit.trimmingCharacters(in: .whitespacesAndNewlines) == "0"
}()

/// `MADV_GUARD_INSTALL` (Linux 6.13; newer than Glibc's headers here).
let madvGuardInstall: CInt = 102

/// Whether this kernel installs guard pages, asked on scratch memory.
let guardPagesAreSupported: Bool = {
    let length = Int(sysconf(Int32(_SC_PAGESIZE)))
    guard let base = unsafe mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
        unsafe base != MAP_FAILED
    else { return false }
    defer { _ = unsafe munmap(base, length) }
    return unsafe madvise(base, length, madvGuardInstall) == 0
}()
