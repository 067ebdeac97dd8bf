import MmapKit

// Scanning and reading records, written once for the writer (an MmapGrowableFile) and the
// reader (an Mmap): both are MmapBytes, so every byte is read through MmapKit's guarded
// access and a file truncated under us becomes an error, not SIGBUS.

/// Why a scan stopped.
public enum ScanStop: Sendable, Equatable {
    /// At zero bytes (the end that growth and recovery leave), or at the scan's limit.
    case end
    /// At a frame that does not validate: a torn or stale write, or garbage.
    case invalid(String)
}

struct ScanState {
    var offset: Int
    var nextSeq: UInt64
    var seed: UInt32
}

/// Copies `buffer.count` bytes at `offset` through guarded access.
@inline(__always)
func guardedCopy<B: MmapBytes & ~Copyable>(
    _ bytes: borrowing B,
    from offset: Int,
    into buffer: UnsafeMutableRawBufferPointer
) throws(MmapError) {
    guard buffer.count > 0 else { return }
    var span = buffer.mutableBytes
    try bytes.guardedCopyBytes(fromByteOffset: offset, into: &span)
}

/// Validates frames from `state.offset` while they lie below `limit`, adding them to `index`.
func scanRecords<B: MmapBytes & ~Copyable>(
    _ bytes: borrowing B,
    state: inout ScanState,
    limit: Int,
    index: inout RecordIndex,
    scratch: inout [UInt8]
) throws(MmapError) -> ScanStop {
    while true {
        let offset = state.offset
        guard offset + Format.frameHeaderSize <= limit else { return .end }
        let word = UInt64(littleEndian: try bytes.guardedLoad(fromByteOffset: offset, as: UInt64.self))
        let seq = UInt64(littleEndian: try bytes.guardedLoad(fromByteOffset: offset + 8, as: UInt64.self))
        let length = UInt32(truncatingIfNeeded: word)
        let crc = UInt32(truncatingIfNeeded: word >> 32)
        if word == 0 && seq == 0 { return .end }
        guard seq == state.nextSeq else {
            return .invalid("record at \(offset) has sequence number \(seq), expected \(state.nextSeq)")
        }
        guard Int(length) <= Format.maxPayload, offset + Format.frameLength(payload: Int(length)) <= limit else {
            return .invalid("record \(seq) at \(offset) claims \(length) bytes, past the end")
        }
        if scratch.count < Int(length) { scratch = [UInt8](repeating: 0, count: Int(length)) }
        let computed = try scratch.withMutableBytes { (b) throws(MmapError) -> UInt32 in
            let payload = UnsafeMutableRawBufferPointer(rebasing: b[0..<Int(length)])
            try guardedCopy(bytes, from: offset + Format.frameHeaderSize, into: payload)
            return Format.recordCRC(
                seed: state.seed,
                length: length,
                seq: seq,
                payload: UnsafeRawBufferPointer(payload)
            )
        }
        guard computed == crc else {
            return .invalid("record \(seq) at \(offset) fails its checksum")
        }
        index.append(offset: offset, length: length, crc: crc)
        state.offset = offset + Format.frameLength(payload: Int(length))
        state.nextSeq = seq + 1
        state.seed = crc
    }
}

/// Reads record `i` (0-based; sequence number `i + 1`) into `out`, checking that its frame
/// still says what the index says and, with `verify`, its checksum.
func readRecord<B: MmapBytes & ~Copyable>(
    _ bytes: borrowing B,
    index: borrowing RecordIndex,
    at i: Int,
    seed: UInt32,
    verify: Bool,
    into out: inout [UInt8]
) throws(SegmentLogError) {
    guard i >= 0 && i < index.count else {
        throw SegmentLogError(.invalidArgument, "record \(i) is not in the log (\(index.count) records)")
    }
    let offset = index.offsets[i]
    let length = index.lengths[i]
    let crc = index.crcs[i]
    let previous = i == 0 ? seed : index.crcs[i - 1]
    let context = "cannot read record \(i + 1) at byte \(offset)"
    let word: UInt64
    let seq: UInt64
    do {
        word = UInt64(littleEndian: try bytes.guardedLoad(fromByteOffset: offset, as: UInt64.self))
        seq = UInt64(littleEndian: try bytes.guardedLoad(fromByteOffset: offset + 8, as: UInt64.self))
    } catch {
        throw SegmentLogError(error, context)
    }
    guard word == UInt64(length) | UInt64(crc) << 32, seq == UInt64(i + 1) else {
        throw SegmentLogError(.corrupt, "record \(i + 1) at \(offset) was overwritten (its frame changed)")
    }
    if out.count != Int(length) {
        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: repeatElement(0, count: Int(length)))
    }
    do {
        try out.withMutableBytes { (b) throws(MmapError) in
            try guardedCopy(bytes, from: offset + Format.frameHeaderSize, into: b)
        }
    } catch {
        throw SegmentLogError(error, context)
    }
    if verify {
        let computed = out.withUnsafeBytes {
            Format.recordCRC(seed: previous, length: length, seq: seq, payload: $0)
        }
        guard computed == crc else {
            throw SegmentLogError(.corrupt, "record \(i + 1) at \(offset) fails its checksum")
        }
    }
}
