import Glibc
import MmapKit
import SegmentLog
import Testing

@Suite struct FormatTests {
    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        let a = Array("hello, ".utf8)
        let b = Array("world".utf8)
        let chained = b.withUnsafeBytes { CRC32C.update(CRC32C.checksum(a), $0) }
        #expect(chained == CRC32C.checksum(a + b))
        let long = Pattern.payload(seq: 7, length: 10_001)
        var bitwise: UInt32 = ~0
        for byte in long {
            bitwise ^= UInt32(byte)
            for _ in 0..<8 { bitwise = (bitwise & 1) != 0 ? (bitwise >> 1) ^ 0x82F6_3B78 : bitwise >> 1 }
        }
        #expect(CRC32C.checksum(long) == ~bitwise)
    }
}

@Suite struct SegmentLogTests {
    @Test func appendsReadsAndRecoversAfterReopen() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/a.log"
            do {
                var log = try SegmentLog(path: path)
                #expect(log.recovery.created)
                try appendPattern(&log, count: 1500)  // past the 1 MiB first size: grows
                let size = log.fileSize
                #expect(size > 1 << 20)
                #expect(try checkAll(log))
                #expect(log.durableCount == 1500)
            }
            let log = try SegmentLog(path: path)
            #expect(!log.recovery.created)
            #expect(log.count == 1500)
            #expect(log.recovery.cutBytes == 0)
            #expect(try checkAll(log))
            #expect(throws: SegmentLogError.self) { try log.read(at: 1500) }
        }
    }

    @Test func groupCommitMakesAllRecordsDurableWithOneFlush() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/g.log"
            do {
                var log = try SegmentLog(path: path)
                let seqs = try log.append(contentsOf: (1...50).map { Pattern.payload(seq: UInt64($0)) })
                #expect(seqs == 1...50)
                try log.appendBuffered(Pattern.payload(seq: 51))
                try log.appendBuffered(Pattern.payload(seq: 52))
                #expect(log.count == 52)
                #expect(log.durableCount == 50)
                try log.commit()
                #expect(log.durableCount == 52)
            }
            let log = try SegmentLog(path: path)
            #expect(log.count == 52)
            #expect(try checkAll(log))
        }
    }

    @Test func aSecondWriterIsRefused() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/w.log"
            let log = try SegmentLog(path: path)
            let error = #expect(throws: SegmentLogError.self) { _ = try SegmentLog(path: path) }
            #expect(error?.code == .locked)
            _ = log.count
        }
    }

    @Test func aFileThatIsNotALogIsRefused() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/junk"
            let fd = open(path, O_CREAT | O_WRONLY, 0o644)
            _ = ftruncate(fd, 8192)
            close(fd)
            pwriteBytes(path, Array("not a log at all".utf8), at: 0)
            let error = #expect(throws: SegmentLogError.self) { _ = try SegmentLog(path: path) }
            #expect(error?.code == .notALog)
            let readerError = #expect(throws: SegmentLogError.self) { _ = try SegmentLogReader(path: path) }
            #expect(readerError?.code == .notALog)
        }
    }
}

/// Torn and stale tails written by hand where a crash would leave them: recovery must cut
/// them (zeroed, durably), never return them, and appends must continue after the last good
/// record.
@Suite struct TornTailTests {
    /// A log of 20 records; returns the end offset and the frame of record 20.
    func makeLog(_ path: String) throws -> (end: Int, lastFrame: Range<Int>) {
        var log = try SegmentLog(path: path)
        try appendPattern(&log, count: 20)
        return (log.end, log.index.byteRange(ofRecords: 19..<20))
    }

    func expectCut(_ path: String, end: Int, garbage: Int) throws {
        do {
            var log = try SegmentLog(path: path)
            #expect(log.count == 20)
            #expect(log.end == end)
            #expect(log.recovery.cutBytes > 0)
            #expect(log.recovery.cutBytes <= garbage)
            #expect(preadBytes(path, end..<(end + garbage)).allSatisfy { $0 == 0 })
            #expect(try checkAll(log))
            try appendPattern(&log, count: 5)
        }
        let log = try SegmentLog(path: path)
        #expect(log.count == 25)
        #expect(log.recovery.cutBytes == 0)
        #expect(try checkAll(log))
        let reader = try SegmentLogReader(path: path)
        #expect(reader.count == 25)
    }

    @Test func aPartialFrameIsCut() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/t.log"
            let (end, _) = try makeLog(path)
            // Record 21's header and half of its payload: what a crash inside memcpy leaves.
            let payload = Pattern.payload(seq: 21, length: 3000)
            var frame = [UInt8](repeating: 0, count: 16)
            frame.withUnsafeMutableBytes {
                $0.storeBytes(
                    of: (UInt64(3000) | UInt64(0xDEAD_BEEF) << 32).littleEndian,
                    toByteOffset: 0,
                    as: UInt64.self
                )
                $0.storeBytes(of: UInt64(21).littleEndian, toByteOffset: 8, as: UInt64.self)
            }
            pwriteBytes(path, frame + payload[0..<1500], at: end)
            try expectCut(path, end: end, garbage: 1516)
        }
    }

    @Test func garbageIsCut() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/t.log"
            let (end, _) = try makeLog(path)
            var rng = SplitMix64(seed: 99)
            pwriteBytes(path, (0..<5000).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: end)
            try expectCut(path, end: end, garbage: 5000)
        }
    }

    @Test func aStaleCopyOfAnEarlierFrameIsCut() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/t.log"
            let (end, last) = try makeLog(path)
            // A whole, once-valid frame (record 20) again after record 20: its sequence number
            // and chained checksum are wrong for this place.
            pwriteBytes(path, preadBytes(path, last), at: end)
            try expectCut(path, end: end, garbage: last.count)
        }
    }

    @Test func aFrameFromAnotherLifeOfTheBytesIsCut() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/t.log"
            let (end, _) = try makeLog(path)
            // Record 21 with the right sequence number and a checksum that is valid on its own,
            // but chained from another predecessor (as after a rewrite of record 20).
            let payload = Pattern.payload(seq: 21, length: 100)
            let crc = payload.withUnsafeBytes {
                Format.recordCRC(seed: 12345, length: 100, seq: 21, payload: $0)
            }
            var frame = [UInt8](repeating: 0, count: 16)
            frame.withUnsafeMutableBytes {
                $0.storeBytes(of: (UInt64(100) | UInt64(crc) << 32).littleEndian, toByteOffset: 0, as: UInt64.self)
                $0.storeBytes(of: UInt64(21).littleEndian, toByteOffset: 8, as: UInt64.self)
            }
            pwriteBytes(path, frame + payload, at: end)
            try expectCut(path, end: end, garbage: 116)
        }
    }

    /// A power cut loses the writes that were not flushed, in any order: each 512-byte sector
    /// written since the last commit may or may not have reached the disk. Every such mix must
    /// recover to all committed records, then whole records only.
    @Test func aPowerCutLosingAnySectorsKeepsEveryCommittedRecord() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/p.log"
            let committed = 30
            do {
                var log = try SegmentLog(path: path)
                try appendPattern(&log, count: committed)
            }
            let before = preadBytes(path, 0..<fileSize(path))
            do {
                var log = try SegmentLog(path: path)
                for seq in (committed + 1)...(committed + 25) {
                    try log.appendBuffered(Pattern.payload(seq: UInt64(seq)))  // never committed
                }
            }
            let after = preadBytes(path, 0..<fileSize(path))
            #expect(before.count == after.count)
            let sectors = stride(from: 0, to: after.count, by: 512).filter {
                before[$0..<($0 + 512)] != after[$0..<($0 + 512)]
            }
            #expect(sectors.count > 20)
            var rng = SplitMix64(seed: 2026)
            for trial in 0..<100 {
                // Each written sector reached the disk or did not; one trial in four keeps a
                // prefix only (the order the writes were issued in).
                var image = before
                let prefix = trial % 4 == 0 ? Int(rng.next() % UInt64(sectors.count + 1)) : nil
                for (k, sector) in sectors.enumerated() {
                    let kept = prefix.map { k < $0 } ?? (rng.next() % 2 == 0)
                    if kept { image.replaceSubrange(sector..<(sector + 512), with: after[sector..<(sector + 512)]) }
                }
                let trialPath = dir + "/trial.log"
                unlink(trialPath)
                let fd = open(trialPath, O_CREAT | O_WRONLY, 0o644)
                _ = image.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
                close(fd)
                let log = try SegmentLog(path: trialPath)
                #expect(log.count >= committed, "trial \(trial): \(log.recovery)")
                #expect(log.count <= committed + 25)
                #expect(try checkAll(log), "trial \(trial): a record is wrong after \(log.recovery)")
                let tail = preadBytes(trialPath, log.end..<fileSize(trialPath))
                #expect(tail.allSatisfy { $0 == 0 }, "trial \(trial): the tail was not cleared")
            }
        }
    }

    /// A zero header in front of anything that is not zero is damage: refused as `corrupt`,
    /// the file untouched, whether the first frame survived or not.
    @Test(arguments: [4096, 4112, 8192])
    func aLostHeaderInFrontOfRecordsIsNeverOverwritten(zeroed: Int) throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/t.log"
            _ = try makeLog(path)
            pwriteBytes(path, [UInt8](repeating: 0, count: zeroed), at: 0)
            let before = wholeFile(path)
            let error = #expect(throws: SegmentLogError.self) { _ = try SegmentLog(path: path) }
            #expect(error?.code == .corrupt)
            #expect(isUnchanged(path, since: before), "a refused file was changed")
            #expect(before[zeroed...].contains { $0 != 0 })  // the records are still there
        }
    }

    @Test func aZeroHeaderWithOneNonZeroByteFarAwayIsRefused() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/t.log"
            let fd = open(path, O_CREAT | O_WRONLY, 0o644)
            _ = ftruncate(fd, 1 << 20)
            close(fd)
            pwriteBytes(path, [1], at: (1 << 20) - 1)
            let error = #expect(throws: SegmentLogError.self) { _ = try SegmentLog(path: path) }
            #expect(error?.code == .corrupt)
            #expect(preadBytes(path, 0..<4096).allSatisfy { $0 == 0 })
        }
    }

    @Test func aCreationThatDiedBeforeItsHeaderStartsAfresh() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/t.log"
            let fd = open(path, O_CREAT | O_WRONLY, 0o644)
            _ = ftruncate(fd, 1 << 20)
            close(fd)
            var log = try SegmentLog(path: path)
            #expect(log.recovery.created)
            try appendPattern(&log, count: 3)
            #expect(log.count == 3)
        }
    }
}
