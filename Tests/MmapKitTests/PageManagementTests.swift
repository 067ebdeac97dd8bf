import Foundation
import Glibc
import MmapKit
import Testing

extension MmapKitTests {
    @Suite struct PageManagementTests {
        let directory = TemporaryDirectory()
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))

        // MARK: Advice

        @Test func everyNonDestructiveAdviceTheKernelSupportsApplies() throws {
            let path = directory.makeFile("data", count: 16 * page)
            try expectNoLeaks { () throws(MmapError) in
                let file = try Mmap(path: path)
                let anonymous = try MutableMmap(anonymous: 16 * page)
                var table: [String] = []
                for advice in MmapAdvice.all {
                    let supported = advice.isSupported
                    table.append("\(advice.name)=\(supported)")
                    // MADV_COLLAPSE needs populated huge-page windows: see collapseMakesHugePages.
                    guard supported, advice != .collapse else { continue }
                    try anonymous.advise(advice, range: page..<(3 * page))
                    if advice != .mergeable && advice != .unmergeable && advice != .collapse {
                        try file.advise(advice)
                    }
                }
                for advice in MmapDestructiveAdvice.all { table.append("\(advice.name)=\(advice.isSupported)") }
                print("advice probe:", table.joined(separator: " "))
            }
            // Advice in every kernel since 3.4 must be reported as supported.
            for advice in [MmapAdvice.normal, .random, .sequential, .willNeed, .dontFork, .doFork, .dontDump, .doDump] {
                #expect(advice.isSupported, "\(advice)")
            }
            #expect(MmapDestructiveAdvice.dontNeed.isSupported)
        }

        @Test func adviceTheMappingCannotTakeIsAnErrorNotANoOp() throws {
            let path = directory.makeFile("data", count: 4 * page)
            try expectNoLeaks { () throws(MmapError) in
                var anonymous = try MutableMmap(anonymous: 4 * page)
                // MADV_REMOVE needs shared memory or a hole-punching filesystem.
                let remove = expectMmapError(.unsupported, errno: EINVAL) { () throws(MmapError) in
                    try anonymous.advise(.remove)
                }
                #expect(remove?.message.contains("MADV_REMOVE") == true)
                // MADV_FREE works on private anonymous memory only.
                var file = try MutableMmap(path: path)
                expectMmapError(.unsupported, errno: EINVAL) { () throws(MmapError) in try file.advise(.free) }
            }
        }

        @Test func adviceRangesAreValidatedFirst() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 2 * page)
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    try map.advise(.willNeed, range: 0..<(2 * page + 1))
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in try map.advise(.willNeed, range: -1..<1) }
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    try map.advise(.dontNeed, range: (Int.max - 1)..<Int.max)
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in try map.lock(range: 0..<(3 * page)) }
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    _ = try map.residency(range: page..<(page * 5))
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in try map.populate(range: 0..<(2 * page + 1)) }
                try map.advise(.willNeed, range: 5..<5)
            }
        }

        @Test func dontNeedZeroesOnlyWholePagesInsideTheRange() throws {
            try expectNoLeaks { () throws(MmapError) in
                let count = 4 * page + 100
                var map = try MutableMmap(anonymous: count)
                unsafe map.withUnsafeMutableBytes { unsafe $0.copyBytes(from: pattern(count)) }
                // No whole page inside: nothing changes.
                try map.advise(.dontNeed, range: 100..<(page + 100))
                #expect(array(map.bytes) == pattern(count))
                // Pages 1 and 2 lie inside 100..<(3 * page + 5); pages 0 and 3 only partly.
                try map.advise(.dontNeed, range: 100..<(3 * page + 5))
                var expected = pattern(count)
                for i in page..<(3 * page) { expected[i] = 0 }
                #expect(array(map.bytes) == expected)
                // A range that starts inside the last, partial page holds no whole page.
                try map.advise(.dontNeed, range: (4 * page + 50)..<count)
                #expect(array(map.bytes) == expected)
                // A range that reaches the end of the mapping includes the partial last page.
                try map.advise(.dontNeed, range: (4 * page)..<count)
                #expect(array(map.bytes)[(4 * page)...].allSatisfy { $0 == 0 })
                #expect(array(map.bytes)[(3 * page)..<(4 * page)] == expected[(3 * page)..<(4 * page)])
            }
        }

        // MARK: Locking

        @Test func locksAndUnlocksRanges() throws {
            try expectNoLeaks { () throws(MmapError) in
                let map = try MutableMmap(anonymous: 8 * page)
                try map.lock(range: page..<(3 * page))
                try map.unlock(range: page..<(3 * page))
                try map.lock()
                // mlock populates the pages (sanitizer runtimes replace mlock with a no-op).
                #expect(try map.residency().isFullyResident || runningUnderSanitizer)
                try map.unlock()
            }
        }

        // MARK: Residency and prefault

        @Test func residencyFollowsPopulateAndEviction() throws {
            let pages = 64
            let path = directory.makeFile("data", count: pages * page)
            let fd = openFile(path, O_RDONLY)
            defer { close(fd) }
            fdatasync(fd)
            #expect(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0)
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(fileDescriptor: fd)
                let before = try map.residency()
                try map.populate()
                let populated = try map.residency()
                try map.advise(.pageout)
                let afterPageout = try map.residency()
                print(
                    "residency pages=\(pages) before=\(before.residentCount) populated=\(populated.residentCount) after-pageout=\(afterPageout.residentCount)"
                )
                #expect(before.pageCount == pages)
                #expect(before.residentCount < pages)
                #expect(populated.isFullyResident)
                #expect(Array(populated.residentRuns) == [0..<pages])
                #expect(afterPageout.residentCount < pages)
            }
        }

        @Test func residencyOfAnonymousMemoryDropsAfterDontNeed() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 8 * page)
                #expect(try map.residency().residentCount == 0)
                var bytes = map.mutableBytes
                for p in [1, 2, 5] { bytes.storeBytes(of: 1, toByteOffset: p * page, as: UInt8.self) }
                let touched = try map.residency()
                #expect(touched.residentCount == 3)
                #expect(touched.residentBytes == 3 * page)
                #expect(Array(touched.residentRuns) == [1..<3, 5..<6])
                #expect(touched.isResident(page: 5) && !touched.isResident(page: 4))
                try map.advise(.dontNeed, range: page..<(3 * page))
                #expect(Array(try map.residency().residentRuns) == [5..<6])
                let middle = try map.residency(range: (5 * page + 10)..<(5 * page + 20))
                #expect(middle.pageCount == 1 && middle.residentCount == 1)
            }
        }

        @Test func populateReportsPagesTheFileNoLongerBacks() throws {
            let path = directory.makeFile("data", count: 16 * page)
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path)
                #expect(unsafe truncate(path, off_t(4 * page)) == 0)
                try map.populate(range: 0..<(4 * page))
                let error = expectMmapError(.fault, errno: EFAULT) { () throws(MmapError) in try map.populate() }
                #expect(error?.operation == .advise)
                var writable = try MutableMmap(path: path, count: 16 * page)
                expectMmapError(.fault, errno: EFAULT) { () throws(MmapError) in
                    try writable.advise(.populateWrite, range: (8 * page)..<(9 * page))
                }
            }
        }

        // MARK: Remap and growth

        @Test func remapGrowsAndShrinksWithDataIntact() throws {
            let calls = try countingCalls { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 4 * page)
                unsafe map.withUnsafeMutableBytes { unsafe $0.copyBytes(from: pattern(4 * page)) }
                try map.remap(count: 256 * page, mayMove: true)
                #expect(map.count == 256 * page)
                let grown = array(map.bytes)
                #expect(Array(grown[0..<(4 * page)]) == pattern(4 * page))
                #expect(grown[(4 * page)...].allSatisfy { $0 == 0 })
                try map.remap(count: 2 * page + 7, mayMove: false)
                #expect(array(map.bytes) == pattern(2 * page + 7))
                print("remap round trip: 4 pages -> 256 pages -> 2 pages + 7 bytes, data intact")
            }
            #expect(calls.maps == 1 && calls.unmaps == 1)
        }

        @Test func remapWithoutMayMoveFailsWhenBlockedAndLeavesTheMapping() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 2 * page)
                unsafe map.withUnsafeMutableBytes { unsafe $0.copyBytes(from: pattern(2 * page)) }
                let next = unsafe map.withUnsafeBytes {
                    unsafe UnsafeMutableRawPointer(mutating: $0.baseAddress!) + 2 * page
                }
                // Occupy the page right after the mapping (or find it occupied already).
                let blocker = unsafe mmap(next, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | 0x100000, -1, 0)
                defer { if unsafe blocker != MAP_FAILED { _ = unsafe munmap(blocker, page) } }
                let before = unsafe map.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
                expectMmapError(.outOfMemory, errno: ENOMEM) { () throws(MmapError) in
                    try map.remap(count: 3 * page, mayMove: false)
                }
                #expect(map.count == 2 * page)
                let after = unsafe map.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
                #expect(after == before)
                #expect(array(map.bytes) == pattern(2 * page))
                expectMmapError(.invalidArgument) { () throws(MmapError) in try map.remap(count: 0, mayMove: true) }
                var empty = try MutableMmap(anonymous: 0)
                expectMmapError(.invalidArgument) { () throws(MmapError) in try empty.remap(count: 1, mayMove: true) }
            }
        }

        @Test(arguments: [true, false])
        func growsAnAppendOnlySegmentFromEmpty(allocate: Bool) throws {
            let path = directory.makeFile("segment", bytes: [])
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            var records = 0
            try expectNoLeaks { () throws(MmapError) in
                var segment = try MutableMmap(fileDescriptor: fd)
                #expect(segment.count == 0)
                // Sizes are multiples of 8, so each step appends whole 8-byte records.
                for size in [page, 3 * page + 8, 64 * page, 1 << 20] {
                    let old = segment.count
                    try segment.grow(to: size, fileDescriptor: fd, allocate: allocate)
                    #expect(segment.count == size)
                    var bytes = segment.mutableBytes
                    for offset in stride(from: old, to: size, by: 8) {
                        bytes.storeBytes(of: UInt64(offset), toByteOffset: offset, as: UInt64.self)
                        records += 1
                    }
                }
                try segment.flush(dataSyncing: fd)
                expectMmapError(.invalidArgument) { () throws(MmapError) in
                    try segment.grow(to: 10, fileDescriptor: fd)
                }
            }
            let contents = readFile(path)
            #expect(contents.count == 1 << 20)
            let words = unsafe contents.withUnsafeBytes { buffer in
                (0..<(contents.count / 8)).map { unsafe buffer.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) }
            }
            // The record at byte offset i holds i, across every extension.
            #expect(records == (1 << 20) / 8)
            #expect(words == (0..<records).map { UInt64($0 * 8) })
        }

        // MARK: Huge pages

        @Test func collapseMakesHugePagesOfPopulatedMemory() throws {
            guard MmapAdvice.collapse.isSupported else {
                print("MADV_COLLAPSE is not supported by this kernel; nothing to observe")
                return
            }
            try expectNoLeaks { () throws(MmapError) in
                let size = 8 << 20
                var map = try MutableMmap(anonymous: size, options: .init().advice(.noHugePage))
                var bytes = map.mutableBytes
                for offset in stride(from: 0, to: size, by: page) {
                    bytes.storeBytes(of: 1, toByteOffset: offset, as: UInt8.self)
                }
                let start = unsafe map.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
                #expect(anonHugePagesKiB(containing: start) == 0)
                try map.advise(.hugePage)
                try map.advise(.collapse)
                let kilobytes = anonHugePagesKiB(containing: start)
                print("AnonHugePages after MADV_COLLAPSE of 8 MiB: \(kilobytes) kB")
                #expect(kilobytes > 0)
            }
        }

        @Test func transparentHugePagesShowUpInSmaps() throws {
            let mode = String(decoding: readFile("/sys/kernel/mm/transparent_hugepage/enabled"), as: UTF8.self)
            guard !mode.contains("[never]") else {
                print("THP is disabled here (\(mode)); nothing to observe")
                return
            }
            try expectNoLeaks { () throws(MmapError) in
                let size = 16 << 20
                var map = try MutableMmap(anonymous: size, options: .init().hugePages(.transparent))
                var bytes = map.mutableBytes
                for offset in stride(from: 0, to: size, by: page) {
                    bytes.storeBytes(of: 1, toByteOffset: offset, as: UInt8.self)
                }
                let start = unsafe map.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
                let kilobytes = anonHugePagesKiB(containing: start)
                print("AnonHugePages for a 16 MiB THP mapping: \(kilobytes) kB")
                #expect(kilobytes > 0)
            }
        }
    }
}

/// The AnonHugePages value (kB) of the /proc/self/smaps entry whose range contains `address`.
func anonHugePagesKiB(containing address: UInt) -> Int {
    let smaps = String(decoding: readFile("/proc/self/smaps"), as: UTF8.self)
    var inside = false
    for line in smaps.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        if let range = fields.first, range.contains("-"), !range.hasSuffix(":") {
            let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
            inside = bounds.count == 2 && bounds[0] <= address && address < bounds[1]
        } else if inside, fields.first == "AnonHugePages:", fields.count >= 2 {
            return Int(fields[1]) ?? 0
        }
    }
    return 0
}
