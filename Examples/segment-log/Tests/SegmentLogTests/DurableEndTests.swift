import Glibc
import MmapKit
import SegmentLog
import Testing

/// The header's durable end is where the writer last made the log durable: everything below it
/// was acknowledged. Damage there is not a torn tail: it is reported and the file is left alone.
@Suite struct DurableEndTests {
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
            #expect(wholeFile(path) == before)
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
}
