/// The on-disk format: a 4 KiB header page, then records, each an 8-byte-aligned frame.
///
/// ```
/// header (page 0)            record frame (8-byte aligned, then padding to 8)
///  0  magic   "SEGLOG01"      0  length   UInt32  payload bytes
///  8  version UInt32 = 1      4  crc      UInt32  CRC-32C, chained (below)
/// 12  header  UInt32 = 4096   8  seq      UInt64  1, 2, 3, ... with no gap
/// 16  salt    UInt64         16  payload
/// 24  crc     UInt32 of 0..<24
/// 64  durable end UInt64: where the last durable record ends (0 before the first publication)
/// ```
///
/// The durable end is only ever raised: everything below it was made durable and may have been
/// acknowledged, so recovery never cuts below it and readers index up to it.
///
/// The CRC of record *n* covers its length, its sequence number and its payload, and starts
/// from the CRC of record *n − 1* (record 1 starts from the CRC of the salt). A frame is valid
/// only at its place in one log's chain: a torn frame, garbage, a stale frame from an earlier
/// life of the same bytes, or a frame of another log never validates. All integers are
/// little-endian.
public enum Format {
    /// The first 8 bytes of a log.
    public static let magic: UInt64 = 0x3130_474F_4C47_4553  // "SEGLOG01" read little-endian
    /// The format version.
    public static let version: UInt32 = 1
    /// The header's size: records start at this offset.
    public static let headerSize = 4096
    /// Length, CRC and sequence number before each payload.
    public static let frameHeaderSize = 16
    /// Where in the header the writer publishes its durable end.
    public static let durableEndOffset = 64
    /// The largest payload: 1 GiB.
    public static let maxPayload = 1 << 30

    /// The frame length of a payload of `count` bytes: header plus payload, padded to 8.
    @inlinable
    public static func frameLength(payload count: Int) -> Int {
        (frameHeaderSize + count + 7) & ~7
    }

    /// The seed of record 1's CRC.
    public static func chainSeed(salt: UInt64) -> UInt32 {
        CRC32C.update(CRC32C.empty, value: salt.littleEndian)
    }

    /// The chained CRC of a record.
    @inlinable
    public static func recordCRC(seed: UInt32, length: UInt32, seq: UInt64, payload: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CRC32C.update(seed, value: length.littleEndian)
        crc = CRC32C.update(crc, value: seq.littleEndian)
        return CRC32C.update(crc, payload)
    }

    /// The 64-byte header prefix of a new log.
    static func header(salt: UInt64) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 64)
        bytes.withUnsafeMutableBytes { b in
            b.storeBytes(of: magic.littleEndian, toByteOffset: 0, as: UInt64.self)
            b.storeBytes(of: version.littleEndian, toByteOffset: 8, as: UInt32.self)
            b.storeBytes(of: UInt32(headerSize).littleEndian, toByteOffset: 12, as: UInt32.self)
            b.storeBytes(of: salt.littleEndian, toByteOffset: 16, as: UInt64.self)
            let crc = CRC32C.update(CRC32C.empty, UnsafeRawBufferPointer(rebasing: b[0..<24]))
            b.storeBytes(of: crc.littleEndian, toByteOffset: 24, as: UInt32.self)
        }
        return bytes
    }

    /// Checks a header prefix (at least 28 bytes) and returns the log's salt.
    static func parseHeader(_ bytes: [UInt8]) throws(SegmentLogError) -> UInt64 {
        guard bytes.count >= 28 else { throw SegmentLogError(.notALog, "the file is too short for a header") }
        let (m, v, size, crc, computed, salt) = bytes.withUnsafeBytes { b in
            (
                UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt32.self)),
                UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 12, as: UInt32.self)),
                UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 24, as: UInt32.self)),
                CRC32C.update(CRC32C.empty, UnsafeRawBufferPointer(rebasing: b[0..<24])),
                UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            )
        }
        guard m == magic else { throw SegmentLogError(.notALog, "bad magic: not a segment log") }
        guard v == version else { throw SegmentLogError(.notALog, "unknown version \(v)") }
        guard size == headerSize else { throw SegmentLogError(.notALog, "unknown header size \(size)") }
        guard crc == computed else { throw SegmentLogError(.notALog, "header checksum mismatch") }
        return salt
    }
}

extension Format {
    /// The durable end read from a header, checked: 0 (a log whose creation did not get as far
    /// as publishing one) is the header size; anything else must be an 8-aligned offset at or
    /// past the header that fits an `Int`. A value that is none of these is damage (`corrupt`),
    /// never trapped on or trusted.
    static func durableEnd(_ raw: UInt64, path: String) throws(SegmentLogError) -> Int {
        if raw == 0 { return headerSize }
        guard let end = Int(exactly: raw), end >= headerSize, end % 8 == 0 else {
            throw SegmentLogError(
                .corrupt,
                "\(path) is corrupt: its header's durable end is \(raw) (0x\(String(raw, radix: 16))), not the "
                    + "8-aligned offset of a record boundary"
            )
        }
        return end
    }
}

/// Where each record is: what recovery or a reader's scan found, and what appends added.
public struct RecordIndex: Sendable {
    /// The byte offset of each record's frame.
    public internal(set) var offsets: [Int] = []
    /// The payload length of each record.
    public internal(set) var lengths: [UInt32] = []
    /// The chained CRC of each record.
    public internal(set) var crcs: [UInt32] = []

    /// The number of records.
    public var count: Int { offsets.count }

    mutating func append(offset: Int, length: UInt32, crc: UInt32) {
        offsets.append(offset)
        lengths.append(length)
        crcs.append(crc)
    }

    /// Keeps the first `count` records.
    mutating func truncate(to count: Int) {
        offsets.removeLast(offsets.count - count)
        lengths.removeLast(lengths.count - count)
        crcs.removeLast(crcs.count - count)
    }

    mutating func reserve(_ n: Int) {
        offsets.reserveCapacity(n)
        lengths.reserveCapacity(n)
        crcs.reserveCapacity(n)
    }

    /// The bytes of the frames of records `range` (the last one padded).
    public func byteRange(ofRecords range: Range<Int>) -> Range<Int> {
        guard !range.isEmpty else { return 0..<0 }
        let last = range.upperBound - 1
        return offsets[range.lowerBound]..<(offsets[last] + Format.frameLength(payload: Int(lengths[last])))
    }
}
