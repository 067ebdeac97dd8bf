import Glibc
import MmapKit

/// The writer of an append-only log of checksummed records in one file that grows in place.
///
/// ```
/// var log = try SegmentLog(path: "/var/db/wal")   // creates or recovers
/// let seq = try log.append(Array("hello".utf8))   // returns once the record is durable
/// let first = try log.read(at: 0)                  // guarded: a truncated file throws
/// ```
///
/// One process writes (an exclusive `flock(2)` enforces it); any number of processes read
/// through ``SegmentLogReader``. Appends go through the mapping of an ``MmapGrowableFile``,
/// which grows the file with `fallocate(2)` inside a fixed address-space reservation, so the
/// mapping never moves and a full disk is an error at growth, never `SIGBUS` at a store.
public struct SegmentLog: ~Copyable {
    /// How the file is sized.
    public struct Options: Sendable {
        /// The address space reserved for the mapping: the largest the log can grow to.
        public var capacity: Int
        /// The size of a new file, and the smallest growth step.
        public var initialSize: Int
        /// The largest growth step (growth doubles the file up to this step).
        public var maxGrowthStep: Int

        /// Options with the given sizes (64 GiB of address space, 1 MiB first, 64 MiB steps).
        public init(capacity: Int = 64 << 30, initialSize: Int = 1 << 20, maxGrowthStep: Int = 64 << 20) {
            self.capacity = capacity
            self.initialSize = initialSize
            self.maxGrowthStep = maxGrowthStep
        }
    }

    /// What recovery found when the log was opened.
    public struct Recovery: Sendable, CustomStringConvertible {
        /// Whole, valid records kept.
        public var records: Int
        /// The byte offset where the next record goes.
        public var end: Int
        /// Bytes after the last valid record that were not zero (a torn or stale tail) and were
        /// zeroed, durably, before the log accepted appends.
        public var cutBytes: Int
        /// Why the scan stopped.
        public var stop: ScanStop
        /// Whether the file was created (or its creation had not finished).
        public var created: Bool

        /// A one-line summary.
        public var description: String {
            var s = "\(records) records, end at byte \(end)"
            if created { s += ", new log" }
            if cutBytes > 0 { s += ", cut \(cutBytes) bytes of torn tail (\(stop))" }
            return s
        }
    }

    /// The file.
    public let path: String
    var file: MmapGrowableFile
    let fd: CInt
    /// The random salt of this log, chained into every record's checksum.
    public let salt: UInt64
    let seed: UInt32
    /// Where each record is.
    public private(set) var index: RecordIndex
    /// The byte offset where the next record goes.
    public private(set) var end: Int
    var lastCRC: UInt32
    /// The first byte appended since the last ``commit()``, or nil when everything is durable.
    var pendingStart: Int?
    /// Whether the file grew since the last ``commit()`` (so its size needs `fdatasync`).
    var sizeChanged = false
    /// The number of records that are durable (appended and committed).
    public private(set) var durableCount: Int
    /// What recovery did when the log was opened.
    public let recovery: Recovery
    var poisoned: String?
    let options: Options

    /// Opens the log at `path`, creating it if it does not exist, and recovers it: every whole,
    /// valid record is kept, and anything after the last one (a torn write) is zeroed and made
    /// durable before this returns. Only the part past the header's durable end can be cut.
    ///
    /// - Throws: ``SegmentLogError/Code/locked`` when another writer has it open;
    ///   ``SegmentLogError/Code/notALog``; ``SegmentLogError/Code/corrupt`` when a record below
    ///   the durable end does not validate; ``SegmentLogError/Code/truncated`` when the file is
    ///   shorter than its durable end (in both cases the file is left unchanged);
    ///   ``SegmentLogError/Code/noSpace``; MmapKit's errors.
    public init(path: String, options: Options = Options()) throws(SegmentLogError) {
        let fd = try System.open(path, O_RDWR | O_CREAT)
        do {
            try self.init(openDescriptor: fd, path: path, options: options)
        } catch {
            close(fd)
            throw error
        }
    }

    /// Opens and recovers the log on `fd`, which the caller closes on failure.
    private init(openDescriptor fd: CInt, path: String, options: Options) throws(SegmentLogError) {
        do {
            try System.lockExclusive(fd, path: path)
            var (size, _) = try System.status(fd)
            var created = false
            var file: MmapGrowableFile
            do { file = try MmapGrowableFile(fileDescriptor: fd, capacity: options.capacity) } catch {
                throw SegmentLogError(error, "cannot map \(path)")
            }
            if size > 0 {
                // Only a file that is all zeros is a new log: a creation that died before its
                // header was durable leaves exactly that (the file was sized, nothing written).
                // A zero header in front of anything else, a record or one stray byte anywhere,
                // is damage: refused, never initialised over.
                let head = try Self.mm("cannot read the header of \(path)") { () throws(MmapError) in
                    try file.guardedBytes(0..<min(size, Format.headerSize))
                }
                if head.allSatisfy({ $0 == 0 }) {
                    let data = try Self.mm("cannot read \(path)") { () throws(MmapError) -> Int? in
                        try Self.lastNonZero(file, from: head.count)
                    }
                    if let data {
                        throw SegmentLogError(
                            .corrupt,
                            "\(path) has a zero header in front of data (a non-zero byte at \(data)): refusing to "
                                + "start a new log over it (the file is unchanged)"
                        )
                    }
                    size = 0
                }
            }
            let salt: UInt64
            // Where the writer last made the log durable: recovery never cuts below it.
            var durableEnd = Format.headerSize
            if size < Format.headerSize {
                if size != 0 { throw SegmentLogError(.notALog, "\(path) is \(size) bytes, shorter than a header") }
                created = true
                salt = UInt64.random(in: 1...UInt64.max)
                try Self.mm("cannot create \(path)") { () throws(MmapError) in
                    if file.count < options.initialSize {
                        try file.grow(to: max(options.initialSize, 2 * Format.headerSize))
                    }
                    try file.guardedStoreBytes(Format.header(salt: salt), toByteOffset: 0)
                    try file.flush()
                }
                try System.syncDirectory(of: path)
            } else {
                let head = try Self.mm("cannot read the header of \(path)") { () throws(MmapError) in
                    try file.guardedBytes(0..<(Format.durableEndOffset + 8))
                }
                salt = try Format.parseHeader(head)
                let raw = head.withUnsafeBytes {
                    UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: Format.durableEndOffset, as: UInt64.self))
                }
                durableEnd = try Format.durableEnd(raw, path: path)
                guard durableEnd <= size else {
                    throw SegmentLogError(
                        .truncated,
                        "\(path) is \(size) bytes, shorter than its durable end \(durableEnd): it was truncated below "
                            + "records that were made durable; refusing to open it (the file is unchanged)"
                    )
                }
            }
            let seed = Format.chainSeed(salt: salt)

            // Recovery: scan to the last whole, valid record.
            var index = RecordIndex()
            var state = ScanState(offset: Format.headerSize, nextSeq: 1, seed: seed)
            var scratch: [UInt8] = []
            let limit = file.count
            let stop = try Self.mm("cannot scan \(path)") { () throws(MmapError) in
                try scanRecords(file, state: &state, limit: limit, index: &index, scratch: &scratch)
            }
            let end = state.offset
            // Below the durable end every record was made durable (and maybe acknowledged): a
            // frame there that does not validate is damage, not a torn write. Cutting it would
            // throw away the intact records after it, durably; refuse, and change nothing.
            if end < durableEnd {
                let why: String
                switch stop {
                case .invalid(let reason): why = reason
                case .end: why = "the file holds zeros at \(end)"
                }
                throw SegmentLogError(
                    .corrupt,
                    "\(path) is corrupt below its durable end \(durableEnd): \(why); this is damage to records "
                        + "that were made durable, not a torn tail, so the log is not cut (the file is unchanged)"
                )
            }
            // Whatever follows the last valid record (at or past the durable end) that is not
            // zero is a torn or stale tail: zero it.
            let cut = try Self.mm("cannot clear the tail of \(path)") { () throws(MmapError) -> Int in
                try Self.zeroTail(&file, from: end)
            }
            // Keep only what is durable: a record that was whole in the page cache when the
            // writer died may not be on disk yet, and neither are the zeros just written.
            try Self.mm("cannot sync \(path)") { () throws(MmapError) in try file.flush() }
            try Self.mm("cannot publish the durable end of \(path)") { () throws(MmapError) in
                try file.guardedStore(UInt64(end).littleEndian, toByteOffset: Format.durableEndOffset)
            }
            self.path = path
            self.file = file
            self.fd = fd
            self.salt = salt
            self.seed = seed
            self.index = index
            self.end = end
            self.lastCRC = state.seed
            self.pendingStart = nil
            self.durableCount = index.count
            self.recovery = Recovery(records: index.count, end: end, cutBytes: cut, stop: stop, created: created)
            self.options = options
        }
    }

    deinit {
        close(fd)  // also releases the flock; MmapGrowableFile closes its own duplicate
    }

    /// The number of records (durable or not).
    public var count: Int { index.count }

    /// The size of the file, as mapped.
    public var fileSize: Int { file.count }

    // MARK: - Appending

    /// Appends a record and returns once it is durable (see ``commit()``).
    ///
    /// - Returns: The record's sequence number (its index plus one).
    @discardableResult
    public mutating func append(_ payload: [UInt8]) throws(SegmentLogError) -> UInt64 {
        let seq = try appendBuffered(payload)
        try commit()
        return seq
    }

    /// Appends records and returns once all of them are durable, with one flush (group commit).
    ///
    /// All or nothing: if one record cannot be appended (a full disk midway, say), the records
    /// of the batch already written are taken back (their bytes zeroed and flushed, the index
    /// and end restored), so the log, in memory and after a reopen, is as before the call and
    /// the next append works. Records appended with ``appendBuffered(_:)`` before the call stay.
    ///
    /// - Returns: Their sequence numbers.
    @discardableResult
    public mutating func append(contentsOf payloads: [[UInt8]]) throws(SegmentLogError) -> ClosedRange<UInt64> {
        guard !payloads.isEmpty else {
            throw SegmentLogError(.invalidArgument, "append(contentsOf:) needs at least one record")
        }
        if let large = payloads.firstIndex(where: { $0.count > Format.maxPayload }) {
            throw SegmentLogError(
                .invalidArgument,
                "record \(large + 1) of the batch has \(payloads[large].count) bytes, more than 1 GiB; nothing was appended"
            )
        }
        let first = UInt64(index.count + 1)
        let mark = (end: end, count: index.count, lastCRC: lastCRC, pendingStart: pendingStart)
        for (k, payload) in payloads.enumerated() {
            do {
                try appendBuffered(payload)
            } catch {
                var error = error
                if let failure = rollBack(to: mark) {
                    error.message =
                        "record \(k + 1) of a batch of \(payloads.count) failed (\(error.message)), and "
                        + "taking back the \(k) before it failed too: \(failure); the log refuses appends"
                } else {
                    error.message =
                        "record \(k + 1) of a batch of \(payloads.count) failed, the batch was taken back: "
                        + error.message
                }
                throw error
            }
        }
        try commit()
        return first...UInt64(index.count)
    }

    /// Takes back the records appended since `mark`: zeroes their bytes and flushes the zeros
    /// (so that neither a reopen nor a machine crash brings them back), then restores the end,
    /// the index, the chain and the pending range. Returns nil, or why it failed (the log is then
    /// poisoned).
    private mutating func rollBack(
        to mark: (end: Int, count: Int, lastCRC: UInt32, pendingStart: Int?)
    ) -> String? {
        let written = mark.end..<end
        if !written.isEmpty {
            do {
                let zeros = [UInt8](repeating: 0, count: written.count)
                try file.guardedStoreBytes(zeros, toByteOffset: written.lowerBound)
                try file.withUnsafeBytes { (b) throws(SegmentLogError) in
                    try System.msync(base: b.baseAddress!, range: written)
                }
            } catch {
                poisoned = "a batch could not be taken back: \(error)"
                return "\(error)"
            }
        }
        end = mark.end
        index.truncate(to: mark.count)
        lastCRC = mark.lastCRC
        pendingStart = mark.pendingStart
        return nil
    }

    /// Appends a record to the mapping without making it durable: it is readable here at once,
    /// survives a crash of this process (the page cache keeps it) but not of the machine until
    /// ``commit()`` returns, and readers in other processes see it only after that.
    @discardableResult
    public mutating func appendBuffered(_ payload: [UInt8]) throws(SegmentLogError) -> UInt64 {
        try payload.withBytes { (b) throws(SegmentLogError) -> UInt64 in try appendBuffered(bytes: b) }
    }

    /// ``appendBuffered(_:)`` of raw bytes.
    @discardableResult
    public mutating func appendBuffered(bytes payload: UnsafeRawBufferPointer) throws(SegmentLogError) -> UInt64 {
        if let poisoned {
            throw SegmentLogError(.poisoned, "the log refuses appends after an earlier failure: \(poisoned)")
        }
        guard payload.count <= Format.maxPayload else {
            throw SegmentLogError(.invalidArgument, "a \(payload.count)-byte record is larger than 1 GiB")
        }
        let offset = end
        let newEnd = offset + Format.frameLength(payload: payload.count)
        if newEnd > file.count { try grow(toAtLeast: newEnd) }
        let seq = UInt64(index.count + 1)
        let length = UInt32(payload.count)
        let crc = Format.recordCRC(seed: lastCRC, length: length, seq: seq, payload: payload)
        do {
            // Payload first, then the frame header; the order does not matter for recovery
            // (the checksum covers both) but keeps the header the last word written.
            if payload.count > 0 {
                try file.guardedStoreBytes(payload.bytes, toByteOffset: offset + Format.frameHeaderSize)
            }
            try file.guardedStore(seq.littleEndian, toByteOffset: offset + 8)
            try file.guardedStore((UInt64(length) | UInt64(crc) << 32).littleEndian, toByteOffset: offset)
        } catch {
            // A fault here means the file lost pages under the mapping (another process
            // truncated it): nothing after this can be trusted.
            poisoned = "\(error)"
            throw SegmentLogError(error, "cannot write record \(seq) at byte \(offset)")
        }
        index.append(offset: offset, length: length, crc: crc)
        if pendingStart == nil { pendingStart = offset }
        end = newEnd
        lastCRC = crc
        return seq
    }

    /// Makes every record appended so far durable: `msync(MS_SYNC)` of exactly the bytes written
    /// since the last commit, then `fdatasync(2)` if the file grew meanwhile (its new size is
    /// metadata that must be durable too, or the records past the old size are lost with it).
    /// Then publishes the new durable end to readers. Does nothing when nothing is pending.
    ///
    /// - Throws: The kernel's error, or ``SegmentLogError/Code/truncated`` when another process
    ///   truncated the file below what the log mapped (`fstat` after the flush); the log is then
    ///   poisoned (``SegmentLogError/Code/poisoned``): after a failed writeback Linux may have
    ///   dropped the dirty pages, so retrying could report success for data that is gone. Reopen
    ///   the log to recover what is on disk.
    public mutating func commit() throws(SegmentLogError) {
        if let poisoned {
            throw SegmentLogError(.poisoned, "the log refuses appends after an earlier failure: \(poisoned)")
        }
        guard let start = pendingStart else { return }
        let range = start..<end
        do throws(SegmentLogError) {
            try file.withUnsafeBytes { (b) throws(SegmentLogError) in
                try System.msync(base: b.baseAddress!, range: range)
            }
            if sizeChanged {
                try System.dataSync(fd)
                sizeChanged = false
            }
            // Another process may have truncated the file under the mapping: the pages it cut
            // off are gone with whatever was written into them, and msync says nothing about
            // them. Checked after the flush, so a truncation before it is never reported durable.
            let (size, _) = try System.status(fd)
            if size < file.count {
                throw SegmentLogError(
                    .truncated,
                    "\(path) was truncated by another process from \(file.count) to \(size) bytes: records "
                        + "written since the last commit (from byte \(start)) may be lost, so they are not reported "
                        + "durable; reopen the log to recover what the file holds"
                )
            }
        } catch {
            poisoned = error.message
            throw error
        }
        pendingStart = nil
        durableCount = index.count
        do {
            try file.guardedStore(UInt64(end).littleEndian, toByteOffset: Format.durableEndOffset)
        } catch {
            throw SegmentLogError(error, "cannot publish the durable end")
        }
    }

    /// Grows the file (doubling, by at most `maxGrowthStep`) so that `needed` bytes fit; on a
    /// full disk, retries with exactly what is needed before giving up.
    mutating func grow(toAtLeast needed: Int) throws(SegmentLogError) {
        let exact = System.alignUp(needed)
        guard exact <= file.capacity else {
            throw SegmentLogError(
                .invalidArgument,
                "the log would grow to \(exact) bytes, past its reserved capacity \(file.capacity)"
            )
        }
        let step = min(max(file.count, options.initialSize), options.maxGrowthStep)
        let target = min(max(exact, System.alignUp(file.count + step)), file.capacity)
        do {
            try file.grow(to: target)
        } catch let error where error.code == .noSpace && target > exact {
            do { try file.grow(to: exact) } catch { throw growthError(error, to: exact) }
        } catch {
            throw growthError(error, to: target)
        }
        sizeChanged = true
    }

    /// The error of a failed growth to `count` bytes: on `ENOSPC`, that the disk is full and how
    /// much was asked for.
    func growthError(_ error: MmapError, to count: Int) -> SegmentLogError {
        guard error.code == .noSpace else {
            return SegmentLogError(error, "cannot grow \(path) from \(file.count) to \(count) bytes")
        }
        return SegmentLogError(
            error,
            "disk full: cannot grow \(path) from \(file.count) to \(count) bytes (\(count - file.count) more bytes "
                + "asked for); nothing was appended, the log is readable, and appends succeed again once space is freed"
        )
    }

    // MARK: - Reading

    /// Record `i` (0-based: sequence number `i + 1`), read through guarded access and checked
    /// against its checksum.
    ///
    /// - Throws: ``SegmentLogError/Code/invalidArgument`` for an index out of range;
    ///   ``SegmentLogError/Code/mmap`` (MmapKit's `fault`) when the file was truncated under the
    ///   log; ``SegmentLogError/Code/corrupt`` when the bytes changed.
    public func read(at i: Int) throws(SegmentLogError) -> [UInt8] {
        var out: [UInt8] = []
        try read(at: i, into: &out)
        return out
    }

    /// ``read(at:)`` into a buffer that is reused (resized to the record), optionally without
    /// the checksum (the frame header is still compared with the index).
    public func read(at i: Int, into out: inout [UInt8], verify: Bool = true) throws(SegmentLogError) {
        try readRecord(file, index: index, at: i, seed: seed, verify: verify, into: &out)
    }

    // MARK: - Cache policy hooks

    /// Which pages of records `records` are in the page cache (`mincore(2)` through a
    /// short-lived read-only ``Mmap`` of their bytes).
    public func residency(ofRecords records: Range<Int>) throws(SegmentLogError) -> MmapResidency {
        let bytes = try byteRange(records)
        return try Self.mm("residency of records \(records)") { () throws(MmapError) -> MmapResidency in
            let map = try Mmap(fileDescriptor: fd, offset: Int64(bytes.lowerBound), count: bytes.count)
            return try map.residency()
        }
    }

    /// Drops the whole pages of durable records `records` from this process's mapping
    /// (`MADV_DONTNEED`, harmless on a shared file mapping: the file keeps the data) and from the
    /// page cache (`posix_fadvise(POSIX_FADV_DONTNEED)`): the eviction of an old segment. Pages
    /// that another process still maps stay cached (the kernel never drops a mapped page here).
    ///
    /// - Returns: The bytes advised.
    @discardableResult
    public func evict(records: Range<Int>) throws(SegmentLogError) -> Int {
        guard records.upperBound <= durableCount else {
            throw SegmentLogError(.invalidArgument, "only durable records can be evicted (\(durableCount) are)")
        }
        let pages = System.innerPages(try byteRange(records))
        try file.withUnsafeBytes { (b) throws(SegmentLogError) in
            try System.adviseDontNeed(base: b.baseAddress!, range: pages)
        }
        try System.fadviseDontNeed(fd, range: pages)
        return pages.count
    }

    /// Starts reading records `records` into the page cache (`posix_fadvise(WILLNEED)`).
    public func prefetch(records: Range<Int>) throws(SegmentLogError) {
        let bytes = try byteRange(records)
        let e = posix_fadvise(fd, off_t(bytes.lowerBound), off_t(bytes.count), POSIX_FADV_WILLNEED)
        guard e == 0 else { throw System.error("posix_fadvise(WILLNEED)", e) }
    }

    func byteRange(_ records: Range<Int>) throws(SegmentLogError) -> Range<Int> {
        guard records.lowerBound >= 0, records.upperBound <= index.count, !records.isEmpty else {
            throw SegmentLogError(
                .invalidArgument,
                "records \(records) are not a non-empty range of the \(index.count)"
            )
        }
        return index.byteRange(ofRecords: records)
    }

    // MARK: - Helpers

    static func mm<T>(
        _ context: @autoclosure () -> String,
        _ body: () throws(MmapError) -> T
    ) throws(SegmentLogError)
        -> T
    {
        do { return try body() } catch { throw SegmentLogError(error, context()) }
    }

    /// The offset of the last non-zero byte from `start` to the end of the file, or nil.
    static func lastNonZero(_ file: borrowing MmapGrowableFile, from start: Int) throws(MmapError) -> Int? {
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        var last: Int?
        var offset = start
        while offset < file.count {
            let n = min(chunk, file.count - offset)
            let found = try buffer.withMutableBytes { (b) throws(MmapError) -> Int? in
                let part = UnsafeMutableRawBufferPointer(rebasing: b[0..<n])
                try guardedCopy(file, from: offset, into: part)
                return part.lastIndex(where: { $0 != 0 })
            }
            if let found { last = offset + found }
            offset += n
        }
        return last
    }

    /// Zeroes every non-zero byte from `start` to the end of the file; returns how many bytes
    /// it cleared (from `start` to the last non-zero byte), 0 when the tail was clean.
    static func zeroTail(_ file: inout MmapGrowableFile, from start: Int) throws(MmapError) -> Int {
        guard let lastNonZero = try lastNonZero(file, from: start) else { return 0 }
        let chunk = 1 << 20
        let count = lastNonZero + 1 - start
        let zeros = [UInt8](repeating: 0, count: min(chunk, count))
        var at = start
        while at < start + count {
            let n = min(zeros.count, start + count - at)
            try zeros.withBytes { (z) throws(MmapError) in
                try file.guardedStoreBytes(UnsafeRawBufferPointer(rebasing: z[0..<n]).bytes, toByteOffset: at)
            }
            at += n
        }
        return count
    }
}
