import Glibc
import MmapKit
import SegmentLog
import Testing

@Suite struct ReaderTests {
    @Test func theReaderSeesOnlyDurableRecordsAndFollowsGrowth() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/r.log"
            var log = try SegmentLog(path: path, options: .init(initialSize: 64 << 10, maxGrowthStep: 64 << 10))
            try appendPattern(&log, count: 10)
            var reader = try SegmentLogReader(path: path)
            #expect(reader.count == 10)
            try log.appendBuffered(Pattern.payload(seq: 11))
            #expect(try reader.refresh() == 0)  // appended, not yet durable: invisible
            try log.commit()
            #expect(try reader.refresh() == 1)
            let sizeBefore = reader.mappedSize
            try appendPattern(&log, count: 200)  // grows the file several times
            #expect(try reader.refresh() == 200)
            #expect(reader.mappedSize > sizeBefore)
            #expect(reader.remaps >= 1)
            for i in 0..<reader.count {
                #expect(try reader.read(at: i) == Pattern.payload(seq: UInt64(i + 1)))
            }
        }
    }

    @Test func aReaderInAnotherProcessFollowsTheWriter() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/f.log"
            var log = try SegmentLog(path: path, options: .init(initialSize: 64 << 10, maxGrowthStep: 256 << 10))
            try appendPattern(&log, count: 5)
            let follower = try ChildProcess([toolPath, "follow", path, "600"], captureOutput: true)
            // Single appends and group commits, while the file grows from 64 KiB.
            var rng = SplitMix64(seed: 18)
            while log.count < 600 {
                if rng.next() % 3 == 0 {
                    let n = min(600 - log.count, Int(1 + rng.next() % 20))
                    let first = UInt64(log.count + 1)
                    try log.append(contentsOf: (0..<UInt64(n)).map { Pattern.payload(seq: first + $0) })
                } else {
                    try log.append(Pattern.payload(seq: UInt64(log.count + 1)))
                }
            }
            let output = String(decoding: follower.readAll(), as: UTF8.self)
            close(follower.output)
            let status = follower.wait()
            #expect(status == 0, "follower: \(output)")
            #expect(output.hasPrefix("followed 600 records"), "\(output)")
            #expect(!output.contains(" 0 remaps"), "the follower should have remapped: \(output)")
        }
    }

    @Test func aLogTruncatedByAnotherProcessGivesErrorsNotACrash() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/t.log"
            var log = try SegmentLog(path: path)
            try appendPattern(&log, count: 100)
            var reader = try SegmentLogReader(path: path)
            #expect(reader.count == 100)
            #expect(run(["/usr/bin/truncate", "-s", "8192", path]).status == 0)

            // Reads of the lost pages: MmapKit's guarded copy turns SIGBUS into an error.
            let readError = #expect(throws: SegmentLogError.self) { _ = try reader.read(at: 90) }
            #expect(readError?.mmapError?.code == .fault)
            let refreshError = #expect(throws: SegmentLogError.self) { try reader.refresh() }
            #expect(refreshError?.code == .truncated)

            // The writer's reads and appends fail the same way (and the log then refuses appends).
            let writerReadError = #expect(throws: SegmentLogError.self) { _ = try log.read(at: 90) }
            #expect(writerReadError?.mmapError?.code == .fault)
            #expect(throws: SegmentLogError.self) { try log.append(Pattern.payload(seq: 101)) }
            let poisoned = #expect(throws: SegmentLogError.self) { try log.append(Pattern.payload(seq: 101)) }
            #expect(poisoned?.code == .poisoned)
        }
    }

    @Test func aLogReplacedUnderTheReaderIsReported() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/p.log"
            do {
                var log = try SegmentLog(path: path)
                try appendPattern(&log, count: 10)
            }
            var reader = try SegmentLogReader(path: path)
            do {
                var other = try SegmentLog(path: dir + "/other.log")
                try appendPattern(&other, count: 3)
            }
            #expect(rename(dir + "/other.log", path) == 0)
            let error = #expect(throws: SegmentLogError.self) { try reader.refresh() }
            #expect(error?.code == .replaced)
            // What it had indexed is still readable: the old file lives while it is mapped.
            #expect(try reader.read(at: 9) == Pattern.payload(seq: 10))
        }
    }

    @Test func residencyAndEvictionHooks() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/e.log"
            var log = try SegmentLog(path: path)
            for seq in 1...64 { try log.append(Pattern.payload(seq: UInt64(seq), length: 8192)) }
            let all = try log.residency(ofRecords: 0..<64)
            #expect(all.residentCount == all.pageCount)  // just written
            let evicted = try log.evict(records: 0..<32)
            #expect(evicted > 0)
            let old = try log.residency(ofRecords: 1..<31)  // whole pages inside the evicted range
            #expect(old.residentCount == 0, "\(old.residentCount) of \(old.pageCount) pages still resident")
            let recent = try log.residency(ofRecords: 40..<64)
            #expect(recent.residentCount == recent.pageCount)
            // Still readable: evicted pages come back from the file.
            #expect(try log.read(at: 5) == Pattern.payload(seq: 6, length: 8192))
            let reader = try SegmentLogReader(path: path)
            try reader.prefetch(records: 0..<64)
            #expect(try reader.residency(ofRecords: 0..<64).pageCount == all.pageCount)
            #expect(throws: SegmentLogError.self) { try log.evict(records: 0..<65) }
        }
    }

    /// Pages of appended records that another process cut off are gone from the page cache: a
    /// commit must not report them durable.
    @Test func aCommitAfterAnotherProcessTruncatedTheFileReportsIt() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/c.log"
            var log = try SegmentLog(path: path)
            try appendPattern(&log, count: 10)
            for seq in 11...40 { try log.appendBuffered(Pattern.payload(seq: UInt64(seq), length: 8192)) }
            let cut = log.index.offsets[20]
            #expect(run(["/usr/bin/truncate", "-s", String(cut), path]).status == 0)
            let error = #expect(throws: SegmentLogError.self) { try log.commit() }
            #expect(error?.code == .truncated)
            #expect(error?.message.contains("truncated") == true, "\(String(describing: error))")
            #expect(log.durableCount == 10)
            let again = #expect(throws: SegmentLogError.self) { try log.commit() }
            #expect(again?.code == .poisoned)
        }
    }

    /// The same file truncated and made a new log in place: a same-inode shrink is `truncated`,
    /// `replaced` is for another file at the path.
    @Test func aLogRewrittenInPlaceIsTruncatedNotReplaced() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/r.log"
            _ = try makeCommittedLog(path, count: 30)
            var reader = try SegmentLogReader(path: path)
            #expect(reader.count == 30)
            #expect(truncate(path, 0) == 0)
            _ = try makeCommittedLog(path, count: 3)
            let error = #expect(throws: SegmentLogError.self) { try reader.refresh() }
            #expect(error?.code == .truncated, "\(String(describing: error))")
        }
    }
}

/// The tool's messages and the package itself.
@Suite struct ToolAndPackageTests {
    @Test func theToolsErrorsCarryOnePrefix() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/junk"
            pwriteBytesCreating(path, Array(repeating: 0x41, count: 8192))
            let (status, output) = run(["/bin/sh", "-c", "exec '\(toolPath)' dump '\(path)' 2>&1"])
            #expect(status != 0)
            #expect(output.hasPrefix("segment-log: "), "\(output)")
            #expect(!output.contains("segment-log: segment-log:"), "\(output)")
            let (_, appendOutput) = run(["/bin/sh", "-c", "exec '\(toolPath)' append '\(path)' 1 2>&1"])
            #expect(!appendOutput.contains("segment-log: segment-log:"), "\(appendOutput)")
        }
    }

    /// Someone copies the example's Package.swift and Sources only: the manifest must still load.
    @Test func thePackageLoadsWithoutItsTestsDirectory() throws {
        let packageDir = String(#filePath.split(separator: "/Tests/", omittingEmptySubsequences: false)[0])
        let root = packageDir + "/../.."
        let candidates = ["/opt/swift/usr/bin/swift", "/usr/bin/swift"]
        let swift = candidates.first { access($0, X_OK) == 0 }
        guard let swift else {
            Issue.record("no swift executable found to load the package")
            return
        }
        try withTemporaryDirectory { dir in
            // ../.. of the copy is a stand-in for MmapKit's root.
            let copy = dir + "/x/y"
            #expect(run(["/bin/mkdir", "-p", copy]).status == 0)
            for name in ["Package.swift", "Sources"] {
                #expect(symlink(root + "/" + name, dir + "/" + name) == 0)
            }
            #expect(run(["/bin/cp", "-r", packageDir + "/Package.swift", packageDir + "/Sources", copy]).status == 0)
            let (status, output) = run([
                "/bin/sh", "-c",
                "cd '\(copy)' && exec '\(swift)' package describe --scratch-path '\(dir)/scratch' 2>&1",
            ])
            #expect(status == 0, "\(output)")
            #expect(!output.contains("SegmentLogTests"), "\(output)")
        }
    }
}
