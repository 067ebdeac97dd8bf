import Foundation
import Glibc
import MmapKit
import Testing

/// A hugetlbfs mount of 2 MiB pages for one test (CI runs as root), unmounted when released.
///
/// The tests map with ``MmapOptions/noReserve`` and never touch the pages, so they need no
/// huge page in the pool (`nr_hugepages` stays as it is: other tests read it).
final class HugeTLBFileSystem: @unchecked Sendable {
    let directory = TemporaryDirectory()
    let mounted: Bool
    static let pageSize = 2 << 20

    init() {
        mounted = unsafe mount("none", directory.path, "hugetlbfs", 0, "pagesize=2M") == 0
    }

    /// A file of `size` bytes (a multiple of the huge page) on the mount.
    func makeFile(_ name: String, size: Int) -> String {
        let path = directory.file(name)
        let fd = unsafe open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0 && ftruncate(fd, off_t(size)) == 0, "cannot make \(path): errno \(errno)")
        close(fd)
        return path
    }

    deinit {
        if mounted { _ = unsafe umount2(directory.path, CInt(MNT_DETACH)) }
    }
}

/// Whether this process can mount hugetlbfs (root, and a kernel with hugetlbfs).
let canMountHugeTLBFS: Bool = HugeTLBFileSystem().mounted

/// Lines of `/proc/self/maps` that name `path`.
func mappingLines(of path: String) -> [Substring] {
    String(decoding: readFile("/proc/self/maps"), as: UTF8.self).split(separator: "\n").filter { $0.hasSuffix(path) }
}

extension MmapKitTests {
    /// Files on hugetlbfs, which the kernel maps and unmaps only in whole huge pages (found by the
    /// hostile review of "Redesign the house": a plain mapping of such a file trapped in munmap,
    /// and a reservation commit of one replaced committed neighbours).
    @Suite(.enabled(if: canMountHugeTLBFS, "needs root and hugetlbfs to mount a hugetlbfs file system"))
    struct HugeTLBFSTests {
        let huge = HugeTLBFileSystem()
        let options = MmapOptions().noReserve()

        @Test func aPlainMappingOfAHugeTLBFSFileUnmapsItsWholeHugePages() throws {
            let path = huge.makeFile("data", size: 2 * HugeTLBFileSystem.pageSize)
            try expectNoLeaks { () throws(MmapError) in
                var map = try Mmap(path: path, count: 100, options: options)
                let count = map.count
                #expect(count == 100)
                #expect(mappingLines(of: path).count == 1)
                try map.unmap()
                let isEmpty = map.isEmpty
                #expect(isEmpty)
                var mutable = try MutableMmap(path: path, options: options)
                let mutableCount = mutable.count
                #expect(mutableCount == 2 * HugeTLBFileSystem.pageSize)
                try mutable.unmap()
                _ = try MutableMmap(path: path, count: 5000, sharing: .private, options: options)  // dropped
            }
            #expect(mappingLines(of: path).isEmpty)
        }

        @Test func anOffsetInsideAHugePageMapsFromTheHugePageBelowIt() throws {
            let path = huge.makeFile("data", size: 2 * HugeTLBFileSystem.pageSize)
            try expectNoLeaks { () throws(MmapError) in
                var map = try Mmap(path: path, offset: 4096, count: 10, options: options)
                let count = map.count
                #expect(count == 10)
                let start = unsafe map.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
                #expect(start % UInt(HugeTLBFileSystem.pageSize) == 4096)
                try map.unmap()
                let tail = try Mmap(path: path, offset: Int64(HugeTLBFileSystem.pageSize) + 1, options: options)
                let tailCount = tail.count
                #expect(tailCount == HugeTLBFileSystem.pageSize - 1)
            }
            #expect(mappingLines(of: path).isEmpty)
        }

        @Test func anEmptyMappingOfAHugeTLBFSFileGrowsInWholeHugePages() throws {
            let path = huge.makeFile("data", size: 0)
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(fileDescriptor: fd, options: options)
                let wasEmpty = map.isEmpty
                #expect(wasEmpty)
                try map.grow(to: HugeTLBFileSystem.pageSize, fileDescriptor: fd, allocate: false)
                let count = map.count
                #expect(count == HugeTLBFileSystem.pageSize)
                try map.unmap()
            }
            #expect(mappingLines(of: path).isEmpty)
        }

        @Test func aReservationRefusesAHugeTLBFSCommitThatIsNotMadeOfHugePages() throws {
            let path = huge.makeFile("data", size: HugeTLBFileSystem.pageSize)
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                var reservation = try MmapReservation(count: 8 << 20)
                try reservation.commit(4096..<8192)
                try reservation.guardedStoreBytes([0xEE, 0xEE], toByteOffset: 4096)
                let failure = expectMmapError(.invalidArgument, errno: 0) { () throws(MmapError) in
                    try reservation.commit(0..<4096, fileDescriptor: fd, fileOffset: 0)
                }
                #expect(failure?.message.contains("hugetlbfs") == true)
                #expect(try reservation.guardedBytes(4096..<4098) == [0xEE, 0xEE])
                #expect(reservation.committedRanges == [4096..<8192])
                // A range of whole huge pages at a huge-page address passes the check.
                let page = HugeTLBFileSystem.pageSize
                let aligned = (page - Int(reservation.baseAddress) % page) % page
                expectMmapError(.invalidArgument, errno: 0) { () throws(MmapError) in
                    try reservation.commit(
                        (aligned + page)..<(aligned + 2 * page),
                        fileDescriptor: fd,
                        fileOffset: 4096
                    )
                }
            }
            #expect(mappingLines(of: path).isEmpty)
        }

        /// Found by the second review: explicit huge pages of another size than the file's.
        @Test func explicitHugePagesOfAnotherSizeStillUnmapTheFilesPages() throws {
            let path = huge.makeFile("data", size: 2 * HugeTLBFileSystem.pageSize)
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                let small = try MmapOptions.HugePages.explicit(log2: 16)
                var map = try MutableMmap(fileDescriptor: fd, count: 4096, options: options.hugePages(small))
                let count = map.count
                #expect(count == 4096)
                try map.unmap()
                _ = try Mmap(fileDescriptor: fd, count: 100, options: options.hugePages(small))  // dropped
            }
            #expect(mappingLines(of: path).isEmpty)
        }

        @Test func destructiveAdviceAndPartialHintsWorkOnAHugeTLBFSMapping() throws {
            let page = HugeTLBFileSystem.pageSize
            let path = huge.makeFile("data", size: 2 * page)
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(fileDescriptor: fd, options: options)
                try map.advise(.random, range: 0..<4096)  // widened to the whole huge page
                try map.advise(.sequential, range: (page + 10)..<(page + 20))
                try map.advise(.dontNeed, range: 0..<page)  // huge pages are never locked: not refused
                try map.advise(.remove, range: page..<(2 * page))
                let view = map.share()
                try view.advise(.willNeed, range: 1..<2)
                try view.flush(range: 0..<4096)
            }
            #expect(mappingLines(of: path).isEmpty)
        }

        @Test func aHugeTLBFSMappingRefusesToGrowBeforeTheFileChanges() throws {
            let page = HugeTLBFileSystem.pageSize
            let path = huge.makeFile("data", size: page)
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(fileDescriptor: fd, options: options)
                expectMmapError(.unsupported) { () throws(MmapError) in try map.remap(count: 2 * page, mayMove: true) }
                let failure = expectMmapError(.unsupported) { () throws(MmapError) in
                    try map.grow(to: 2 * page, fileDescriptor: fd, allocate: false)
                }
                #expect(failure?.operation == .grow)
                try map.remap(count: page - 100, mayMove: false)  // within its huge page: fine
                let count = map.count
                #expect(count == page - 100)
            }
            var st = stat()
            #expect(unsafe fstat(fd, &st) == 0 && Int(st.st_size) == page)
            #expect(mappingLines(of: path).isEmpty)
        }

        /// The file-system question fails after the kernel mapped a hugetlbfs file: the pages are
        /// unmapped with the file's page size (found by rounding up, never past it) and the error
        /// is thrown; nothing leaks and no trap.
        @Test(.enabled(if: _MmapFaultInjection.isAvailable, "fault injection exists in debug builds"))
        func aFailedFileSystemQuestionAfterMappingAHugeTLBFSFileUnmapsItsHugePages() throws {
            let path = huge.makeFile("data", size: 2 * HugeTLBFileSystem.pageSize)
            let fd = openFile(path, O_RDONLY)
            defer { close(fd) }
            let before = _MmapDiagnostics.liveMappings
            _MmapFaultInjection.reset()
            defer { _MmapFaultInjection.reset() }
            _MmapFaultInjection.inject(.fstatfs, times: 2, errno: EIO)
            // Offset 0: the kernel maps (a huge-page address), then the question fails. Offset
            // 4096: the kernel refuses the offset (EINVAL), then the question fails.
            for offset: Int64 in [0, 4096] {
                let failure = expectMmapError(.system, errno: EIO) { () throws(MmapError) in
                    _ = try Mmap(fileDescriptor: fd, offset: offset, count: 100, options: options)
                }
                #expect(failure?.operation == .stat)
            }
            #expect(_MmapFaultInjection.callCount(.fstatfs) == 2)
            #expect(_MmapDiagnostics.liveMappings == before)
            #expect(mappingLines(of: path).isEmpty)
        }

        @Test func aGrowableFileOnHugeTLBFSIsRefusedClearly() throws {
            let path = huge.makeFile("data", size: 0)
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            expectNoLeaks {
                let failure = expectMmapError(.unsupported) { () throws(MmapError) in
                    _ = try MmapGrowableFile(fileDescriptor: fd, capacity: 8 << 20)
                }
                #expect(failure?.message.contains("hugetlbfs") == true)
            }
        }
    }

    /// The other findings of that review.
    @Suite struct RedesignReviewTests {
        let directory = TemporaryDirectory()

        @Test func anEndPastTheLargestFileOffsetOnceRoundedIsAnInvalidArgument() throws {
            let path = directory.makeFile("data", count: 4096)
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            expectNoLeaks {
                for offset in [Int64.max - 100, Int64.max - 4095, Int64.max] {
                    expectMmapError(.invalidArgument, errno: 0) { () throws(MmapError) in
                        _ = try Mmap(fileDescriptor: fd, offset: offset, count: 1)
                    }
                }
                expectMmapError(.invalidArgument, errno: 0) { () throws(MmapError) in
                    var reservation = try MmapReservation(count: 1 << 20)
                    try reservation.commit(0..<8192, fileDescriptor: fd, fileOffset: Int64.max - 4095)
                }
            }
        }

        @Test func aGrowableFileNeedsAReadWriteDescriptorEvenForAnEmptyFile() throws {
            let path = directory.makeFile("empty", bytes: [])
            for mode in [O_RDONLY, O_WRONLY] {
                let fd = openFile(path, mode)
                defer { close(fd) }
                expectNoLeaks {
                    _ = expectMmapError(.permissionDenied, errno: EACCES) { () throws(MmapError) in
                        _ = try MmapGrowableFile(fileDescriptor: fd, capacity: 1 << 20)
                    }
                }
            }
            #expect(readFile(path).isEmpty)
        }
    }
}
