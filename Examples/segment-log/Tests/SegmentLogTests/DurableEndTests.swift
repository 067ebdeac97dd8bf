import Glibc
import MmapKit
import SegmentLog
import Testing

/// The header's durable end is where the writer last made the log durable: everything below it
/// was acknowledged. Damage there is not a torn tail: it is reported and the file is left alone.
@Suite struct DurableEndTests {
    @Test func aCorruptRecordBelowTheDurableEndIsReportedNotCut() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/c.log"
            let index = try makeCommittedLog(path)
            let offset = index.offsets[9]
            // Record 10's checksum word changes (a media error, or a stray write).
            var word = preadBytes(path, (offset + 4)..<(offset + 5))
            word[0] ^= 0xFF
            pwriteBytes(path, word, at: offset + 4)
            let before = wholeFile(path)
            let error = #expect(throws: SegmentLogError.self) { _ = try SegmentLog(path: path) }
            #expect(error?.code == .corrupt)
            #expect(error?.message.contains("at \(offset)") == true, "\(String(describing: error))")
            #expect(isUnchanged(path, since: before), "recovery changed a file it refused")
            let readerError = #expect(throws: SegmentLogError.self) { _ = try SegmentLogReader(path: path) }
            #expect(readerError?.code == .corrupt)
        }
    }

    @Test func zerosBelowTheDurableEndAreReportedNotCut() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/z.log"
            let index = try makeCommittedLog(path)
            let offset = index.offsets[12]
            pwriteBytes(path, [UInt8](repeating: 0, count: 16), at: offset)
            let before = wholeFile(path)
            let error = #expect(throws: SegmentLogError.self) { _ = try SegmentLog(path: path) }
            #expect(error?.code == .corrupt)
            #expect(error?.message.contains("at \(offset)") == true, "\(String(describing: error))")
            #expect(isUnchanged(path, since: before))
        }
    }

    @Test func aLogTruncatedAtARecordBoundaryBelowTheDurableEndIsReported() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/t.log"
            let index = try makeCommittedLog(path)
            let cut = index.offsets[10]
            #expect(truncate(path, off_t(cut)) == 0)
            let error = #expect(throws: SegmentLogError.self) { _ = try SegmentLog(path: path) }
            #expect(error?.code == .truncated)
            #expect(fileSize(path) == cut)
            let readerError = #expect(throws: SegmentLogError.self) { _ = try SegmentLogReader(path: path) }
            #expect(readerError?.code == .truncated)
        }
    }

    /// A durable end of 0xFF... does not fit an Int: the reader (in a child, so that a trap is
    /// seen as a signal) and the writer report `corrupt`.
    @Test func aDurableEndThatFitsNoIntIsCorruptNotATrap() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/f.log"
            _ = try makeCommittedLog(path)
            pwriteBytes(path, [UInt8](repeating: 0xFF, count: 8), at: Format.durableEndOffset)
            let before = wholeFile(path)
            let (status, output) = run(["/bin/sh", "-c", "exec '\(toolPath)' dump '\(path)' 2>&1"])
            guard status & 0x7F == 0 else {
                Issue.record("the reader died of signal \(status & 0x7F): \(output)")
                return
            }
            #expect(output.contains("corrupt"), "\(output)")
            let readerError = #expect(throws: SegmentLogError.self) { _ = try SegmentLogReader(path: path) }
            #expect(readerError?.code == .corrupt)
            let error = #expect(throws: SegmentLogError.self) { _ = try SegmentLog(path: path) }
            #expect(error?.code == .corrupt)
            #expect(isUnchanged(path, since: before))
        }
    }

    @Test func aDurableEndInsideTheHeaderOrUnalignedIsCorrupt() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/u.log"
            let index = try makeCommittedLog(path)
            for bad in [UInt64(100), UInt64(index.offsets[3] + 4)] {
                pwriteBytes(path, bytesOf(bad), at: Format.durableEndOffset)
                let error = #expect(throws: SegmentLogError.self) { _ = try SegmentLog(path: path) }
                #expect(error?.code == .corrupt, "durable end \(bad)")
                let readerError = #expect(throws: SegmentLogError.self) { _ = try SegmentLogReader(path: path) }
                #expect(readerError?.code == .corrupt, "durable end \(bad)")
            }
            // A durable end of 0 is a creation that died before publishing one: nothing durable.
            pwriteBytes(path, bytesOf(0), at: Format.durableEndOffset)
            let reader = try SegmentLogReader(path: path)
            #expect(reader.count == 0)
            let log = try SegmentLog(path: path)
            #expect(log.count == 20)
        }
    }

    /// A stale durable end below the records kept: the records after it are a tail, kept when
    /// valid and cut when torn.
    @Test func recordsPastAStaleDurableEndAreKeptAndATornTailAfterThemIsCut() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/s.log"
            let index = try makeCommittedLog(path)
            let end = index.byteRange(ofRecords: 19..<20).upperBound
            pwriteBytes(path, bytesOf(UInt64(index.offsets[15])), at: Format.durableEndOffset)
            pwriteBytes(path, [UInt8](repeating: 0xAB, count: 100), at: end)
            let log = try SegmentLog(path: path)
            #expect(log.count == 20)
            #expect(log.recovery.cutBytes == 100)
            #expect(try checkAll(log))
        }
    }
}
