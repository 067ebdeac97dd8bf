import Glibc
import MmapKit

/// A reader of a segment log, in any process, that follows the writer: ``refresh()`` maps what
/// the file has grown to and indexes the records the writer has made durable since.
///
/// The reader maps the file read-only (an ``Mmap``), never writes, takes no lock, and reads
/// every byte through MmapKit's guarded access: if another process truncates the file, reads
/// of the lost bytes throw instead of killing the reader with `SIGBUS`, and ``refresh()``
/// reports ``SegmentLogError/Code/truncated``; if the path is replaced (a new log renamed
/// over it, or the file deleted), ``refresh()`` reports ``SegmentLogError/Code/replaced``.
///
/// It sees only records below the durable end the writer publishes after each commit, so it
/// never sees a record that a crash could still take back.
public struct SegmentLogReader: ~Copyable {
    /// The file.
    public let path: String
    let fd: CInt
    let identity: System.Identity
    var map: Mmap
    /// The log's salt (see ``Format``).
    public let salt: UInt64
    let seed: UInt32
    /// Where each record is.
    public private(set) var index: RecordIndex
    var state: ScanState
    var scratch: [UInt8] = []
    /// How many times ``refresh()`` remapped a file that had grown.
    public private(set) var remaps = 0

    /// Opens the log at `path` for reading and indexes its durable records.
    ///
    /// - Throws: ``SegmentLogError/Code/notALog`` (also for a log whose writer has not finished
    ///   creating it: retry), the errors of ``refresh()``.
    public init(path: String) throws(SegmentLogError) {
        let fd = try System.open(path, O_RDONLY)
        let (identity, salt) = try Self.checkHeader(fd, path: path)
        let map = try Self.mapFile(fd, path: path)
        let seed = Format.chainSeed(salt: salt)
        var index = RecordIndex()
        var state = ScanState(offset: Format.headerSize, nextSeq: 1, seed: seed)
        var scratch: [UInt8] = []
        do {
            try Self.catchUp(map, fd: fd, path: path, state: &state, index: &index, scratch: &scratch)
        } catch {
            close(fd)
            throw error
        }
        self.path = path
        self.fd = fd
        self.identity = identity
        self.map = map
        self.salt = salt
        self.seed = seed
        self.index = index
        self.state = state
        self.scratch = scratch
    }

    /// Reads and checks the header with `pread(2)`; closes `fd` on failure.
    private static func checkHeader(_ fd: CInt, path: String) throws(SegmentLogError) -> (System.Identity, UInt64) {
        do throws(SegmentLogError) {
            let (size, identity) = try System.status(fd)
            guard size >= Format.headerSize else {
                throw SegmentLogError(.notALog, "\(path) is \(size) bytes, shorter than a header")
            }
            var head = [UInt8](repeating: 0, count: 64)
            let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 64, 0) }
            guard n == 64 else { throw SegmentLogError(.notALog, "cannot read the header of \(path)") }
            return (identity, try Format.parseHeader(head))
        } catch {
            close(fd)
            throw error
        }
    }

    /// Maps the whole file read-only; closes `fd` on failure.
    private static func mapFile(_ fd: CInt, path: String) throws(SegmentLogError) -> Mmap {
        do { return try Mmap(fileDescriptor: fd) } catch {
            close(fd)
            throw SegmentLogError(error, "cannot map \(path)")
        }
    }

    deinit {
        close(fd)
    }

    /// The number of durable records indexed so far.
    public var count: Int { index.count }

    /// The size of the file as mapped.
    public var mappedSize: Int { map.count }

    /// Catches up with the writer: checks that the path still names this file and that it did
    /// not shrink, maps its new pages if it grew, and indexes the records below the durable end
    /// the writer published.
    ///
    /// - Returns: The number of new records.
    /// - Throws: ``SegmentLogError/Code/replaced``, ``SegmentLogError/Code/truncated``,
    ///   ``SegmentLogError/Code/corrupt`` (a published record does not validate), MmapKit's
    ///   errors. The reader's index is unchanged by a failed refresh.
    @discardableResult
    public mutating func refresh() throws(SegmentLogError) -> Int {
        guard System.identity(path: path) == identity else {
            throw SegmentLogError(.replaced, "\(path) was deleted or replaced by another file")
        }
        let (size, _) = try System.status(fd)
        if size < map.count {
            throw SegmentLogError(.truncated, "\(path) shrank from \(map.count) to \(size) bytes under the reader")
        }
        if size > map.count {
            do { try map.remap(count: size, mayMove: true) } catch {
                throw SegmentLogError(error, "cannot map the \(size - map.count) bytes \(path) grew by")
            }
            remaps += 1
        }
        let before = index.count
        try Self.catchUp(map, fd: fd, path: path, state: &state, index: &index, scratch: &scratch)
        return index.count - before
    }

    /// Indexes the records below the published durable end; on failure, changes nothing.
    private static func catchUp(
        _ map: borrowing Mmap,
        fd: CInt,
        path: String,
        state: inout ScanState,
        index: inout RecordIndex,
        scratch: inout [UInt8]
    ) throws(SegmentLogError) {
        let raw = try SegmentLog.mm("cannot read the durable end of \(path)") { () throws(MmapError) in
            UInt64(littleEndian: try map.guardedLoad(fromByteOffset: Format.durableEndOffset, as: UInt64.self))
        }
        let published = try Format.durableEnd(raw, path: path)
        // The writer grows the file before it publishes an end inside the new part, so an end
        // past what is mapped means the size was read first: stop at the mapping this time. But
        // if the file is shorter than that end now, it was truncated below durable records.
        if published > map.count {
            let (size, _) = try System.status(fd)
            if size < published {
                throw SegmentLogError(
                    .truncated,
                    "\(path) is \(size) bytes, shorter than its durable end \(published): it was truncated below "
                        + "records that were made durable"
                )
            }
        }
        let limit = min(published, map.count)
        // The same file (the identity was checked) whose durable end went back: it was
        // truncated and written again in place. `replaced` is only for another file at the path.
        guard limit >= state.offset else {
            throw SegmentLogError(
                .truncated,
                "the durable end of \(path) went back from \(state.offset) to \(limit) in the same file: the log was "
                    + "truncated and rewritten in place"
            )
        }
        var newState = state
        var newIndex = index
        let stop = try SegmentLog.mm("cannot scan \(path)") { () throws(MmapError) in
            try scanRecords(map, state: &newState, limit: limit, index: &newIndex, scratch: &scratch)
        }
        if case .invalid(let why) = stop {
            throw SegmentLogError(.corrupt, "a record published as durable does not validate: \(why)")
        }
        if newState.offset != limit {
            throw SegmentLogError(.corrupt, "\(path) holds zeros at \(newState.offset), below its durable end \(limit)")
        }
        state = newState
        index = newIndex
    }

    /// Record `i` (0-based), read through guarded access and checked against its checksum.
    public func read(at i: Int) throws(SegmentLogError) -> [UInt8] {
        var out: [UInt8] = []
        try read(at: i, into: &out)
        return out
    }

    /// ``read(at:)`` into a reused buffer, optionally without the checksum.
    public func read(at i: Int, into out: inout [UInt8], verify: Bool = true) throws(SegmentLogError) {
        try readRecord(map, index: index, at: i, seed: seed, verify: verify, into: &out)
    }

    // MARK: - Cache policy hooks

    /// Which pages of records `records` are in the page cache (`mincore(2)`).
    public func residency(ofRecords records: Range<Int>) throws(SegmentLogError) -> MmapResidency {
        let bytes = try byteRange(records)
        return try SegmentLog.mm("residency of records \(records)") { () throws(MmapError) in
            try map.residency(range: bytes)
        }
    }

    /// Asks the kernel to read records `records` ahead (`MADV_WILLNEED`).
    public func prefetch(records: Range<Int>) throws(SegmentLogError) {
        let bytes = try byteRange(records)
        try SegmentLog.mm("prefetch of records \(records)") { () throws(MmapError) in
            try map.advise(.willNeed, range: bytes)
        }
    }

    /// Reclaims the whole pages of records `records` now (`MADV_PAGEOUT`, then
    /// `posix_fadvise(DONTNEED)`). Pages another process maps (the writer's tail, say) stay.
    ///
    /// - Returns: The bytes advised.
    @discardableResult
    public func evict(records: Range<Int>) throws(SegmentLogError) -> Int {
        let pages = System.innerPages(try byteRange(records))
        guard !pages.isEmpty else { return 0 }
        try SegmentLog.mm("eviction of records \(records)") { () throws(MmapError) in
            try map.advise(.pageout, range: pages)
        }
        try System.fadviseDontNeed(fd, range: pages)
        return pages.count
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
}
