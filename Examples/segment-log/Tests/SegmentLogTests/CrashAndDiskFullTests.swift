import Glibc
import MmapKit
import SegmentLog
import Testing

/// The crash test: the tool SIGKILLs a writing child at random moments and checks after each
/// kill that every acknowledged record is present and intact. SEGMENT_LOG_KILLS (default 100)
/// and SEGMENT_LOG_SEED (default: random, printed) control it.
@Suite struct CrashTests {
    @Test func everyAcknowledgedRecordSurvivesSIGKILL() throws {
        let kills = getenv("SEGMENT_LOG_KILLS").flatMap { Int(String(cString: $0)) } ?? 100
        let seed =
            getenv("SEGMENT_LOG_SEED").flatMap { UInt64(String(cString: $0)) } ?? UInt64.random(in: 0...UInt64.max)
        try withTemporaryDirectory { dir in
            let (status, output) = run([
                toolPath, "crash-test", "--kills", String(kills), "--seed", String(seed), "--dir", dir,
            ])
            print(output)
            #expect(status == 0, "crash test failed (seed \(seed)): \(output)")
            #expect(output.contains("records lost                   0"), "\(output)")
        }
    }
}

/// Disk full on a small tmpfs mounted for the test (root only: CI runs as root).
@Suite struct DiskFullTests {
    @Test(
        .enabled(if: getuid() == 0, "mounting a tmpfs needs root; run the tests as root to check disk-full behaviour")
    )
    func appendFailsClearlyOnAFullDiskAndResumesWhenSpaceIsFreed() throws {
        try withTemporaryDirectory { dir in
            let mountPoint = dir + "/small"
            #expect(mkdir(mountPoint, 0o755) == 0)
            guard mount("tmpfs", mountPoint, "tmpfs", 0, "size=1m") == 0 else {
                Issue.record("mount tmpfs failed: errno \(errno)")
                return
            }
            defer { umount2(mountPoint, Int32(MNT_DETACH)) }
            // Take a quarter of the space, to free it later.
            let filler = mountPoint + "/filler"
            let fd = open(filler, O_CREAT | O_WRONLY, 0o644)
            #expect(posix_fallocate(fd, 0, 256 << 10) == 0)
            close(fd)

            let path = mountPoint + "/full.log"
            var log = try SegmentLog(path: path, options: .init(initialSize: 64 << 10, maxGrowthStep: 128 << 10))
            var appended = 0
            var failure: SegmentLogError?
            while failure == nil && appended < 10_000 {
                do throws(SegmentLogError) {
                    try log.append(Pattern.payload(seq: UInt64(log.count + 1), length: 4000))
                    appended += 1
                } catch {
                    failure = error
                }
            }
            let error = try #require(failure)
            print("disk full after \(appended) records of 4000 bytes: \(error)")
            #expect(error.code == .noSpace)
            #expect(error.errno == ENOSPC)
            #expect(error.description.contains("disk full"))
            #expect(log.count == appended)

            // The log stays readable, by the writer and by a reader.
            for i in 0..<log.count {
                #expect(try log.read(at: i) == Pattern.payload(seq: UInt64(i + 1), length: 4000))
            }
            let reader = try SegmentLogReader(path: path)
            #expect(reader.count == appended)

            // Free space: appends resume.
            #expect(unlink(filler) == 0)
            for _ in 0..<20 { try log.append(Pattern.payload(seq: UInt64(log.count + 1), length: 4000)) }
            #expect(log.count == appended + 20)
            var reopened = try SegmentLogReader(path: path)
            try reopened.refresh()
            #expect(reopened.count == appended + 20)
            for i in 0..<reopened.count {
                #expect(try reopened.read(at: i) == Pattern.payload(seq: UInt64(i + 1), length: 4000))
            }
        }
    }

    /// A group commit that runs out of disk midway appends nothing: not in memory, not in the
    /// file after a reopen, and the next append works.
    @Test(.enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
    func aBatchThatMeetsAFullDiskMidwayAppendsNothing() throws {
        try withTemporaryDirectory { dir in
            try withSmallTmpfs(in: dir, size: "1m") { mountPoint in
                let path = mountPoint + "/batch.log"
                let batch = (0..<40).map { 4000 + $0 }  // 160 KB: more than the first 64 KiB
                let before: Int
                let end: Int
                do {
                    var log = try SegmentLog(
                        path: path,
                        options: .init(initialSize: 64 << 10, maxGrowthStep: 128 << 10)
                    )
                    for _ in 0..<3 { try log.append(Pattern.payload(seq: UInt64(log.count + 1), length: 1000)) }
                    before = log.count
                    end = log.end
                    fillDisk(mountPoint + "/filler")
                    let payloads = batch.enumerated().map { Pattern.payload(seq: UInt64(before + 1 + $0), length: $1) }
                    let error = #expect(throws: SegmentLogError.self) { try log.append(contentsOf: payloads) }
                    #expect(error?.code == .noSpace)
                    #expect(error?.message.contains("nothing was appended") == true, "\(String(describing: error))")
                    #expect(log.count == before, "a failed batch left \(log.count - before) records in the log")
                    #expect(log.durableCount == before)
                    #expect(log.end == end)
                    #expect(preadBytes(path, end..<log.fileSize).allSatisfy { $0 == 0 }, "the batch's bytes stay")
                    // Appends that fit still work, and commit only themselves.
                    try log.append(Pattern.payload(seq: UInt64(before + 1), length: 1000))
                    #expect(log.count == before + 1)
                }
                let log = try SegmentLog(path: path)
                #expect(log.count == before + 1, "a reopen sees \(log.count - before - 1) records of the failed batch")
                #expect(log.recovery.cutBytes == 0)
                for i in 0..<log.count {
                    #expect(try log.read(at: i) == Pattern.payload(seq: UInt64(i + 1), length: 1000))
                }
            }
        }
    }

    /// One record larger than a growth step meets the full disk at its first, exact, attempt.
    @Test(.enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
    func theNoSpaceMessageSaysTheDiskIsFullAndHowMuchWasAsked() throws {
        try withTemporaryDirectory { dir in
            try withSmallTmpfs(in: dir, size: "1m") { mountPoint in
                let path = mountPoint + "/big.log"
                var log = try SegmentLog(path: path, options: .init(initialSize: 64 << 10, maxGrowthStep: 64 << 10))
                fillDisk(mountPoint + "/filler")
                let error = #expect(throws: SegmentLogError.self) {
                    try log.append(Pattern.payload(seq: 1, length: 600_000))
                }
                #expect(error?.code == .noSpace)
                let message = error?.message ?? ""
                #expect(message.contains("disk full"), "\(message)")
                #expect(message.contains("from \(64 << 10) to 606208 bytes"), "\(message)")
                #expect(message.contains("540672 more bytes"), "\(message)")
                #expect(log.count == 0)
            }
        }
    }
}
