import Glibc
import MmapKit
import Synchronization

// Issue 15's workloads: the parallel prefault against MAP_POPULATE, and the mirrored ring where
// it matters, a consumer parsing variable-size records in place.

/// `MADV_POPULATE_READ` and `MADV_POPULATE_WRITE` (Linux 5.14; older Glibc headers lack them).
let rawMadvPopulateRead: CInt = 22
let rawMadvPopulateWrite: CInt = 23

/// The pages of `[base, base + length)` that mincore(2) reports resident: the checksum of the
/// populate workloads (every implementation must have populated every page).
func residentPages(_ base: UnsafeMutableRawPointer, _ length: Int) -> UInt64 {
    let pages = (length + 4095) / 4096
    let vector = UnsafeMutablePointer<UInt8>.allocate(capacity: pages)
    defer { vector.deallocate() }
    precondition(mincore(base, length, vector) == 0, "mincore failed: \(String(cString: strerror(errno)))")
    var resident: UInt64 = 0
    for i in 0..<pages where vector[i] & 1 != 0 { resident &+= 1 }
    return resident
}

/// anon-populate and file-populate.
func makePopulateWorkloads(files: DataFiles, sizes: BenchSizes, threads: Int) -> [Workload] {
    var workloads: [Workload] = []
    // MARK: anon-populate: 1 GiB (64 MiB with --quick) of private anonymous memory prefaulted for
    // writing in 4 KiB pages (MADV_NOHUGEPAGE first; MAP_POPULATE cannot take the advice before
    // it populates, so its row is in 4 KiB pages only where THP is `madvise` or `never`, as the
    // report header shows), then counted with mincore and unmapped.
    let anonymous = sizes.anonymous
    // Memory freed to the host is slow to touch again: touch and free it untimed.
    let touchAndFreeAnonymous = {
        let base = rawMap(anonymous, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1)
        madvise(base, anonymous, MADV_NOHUGEPAGE)
        _ = touchPages(UnsafeMutableRawBufferPointer(start: base, count: anonymous))
        munmap(base, anonymous)
    }
    workloads.append(
        Workload(
            name: "anon-populate",
            bytes: anonymous,
            baseline: "raw-map-populate",
            implementations: [
                Implementation(name: "raw-map-populate") {
                    let base = rawMap(anonymous, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1)
                    let pages = residentPages(base, anonymous)
                    munmap(base, anonymous)
                    return pages
                },
                Implementation(name: "raw-madvise-1-thread") {
                    let base = rawMap(anonymous, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1)
                    madvise(base, anonymous, MADV_NOHUGEPAGE)
                    precondition(madvise(base, anonymous, rawMadvPopulateWrite) == 0, "MADV_POPULATE_WRITE failed")
                    let pages = residentPages(base, anonymous)
                    munmap(base, anonymous)
                    return pages
                },
                Implementation(name: "mmapkit-1-thread") {
                    UInt64(try populatedAnonymous(anonymous, threads: 1).residency().residentCount)
                },
                Implementation(name: "mmapkit-\(threads)-threads") {
                    UInt64(try populatedAnonymous(anonymous, threads: threads).residency().residentCount)
                },
            ],
            prepare: touchAndFreeAnonymous
        )
    )

    // MARK: anon-prefault: anon-populate's prefault alone. The timed run maps, prefaults and counts
    // the pages; the munmap, single-threaded in the kernel whoever prefaulted (about a fifth of
    // anon-populate's time), comes after the clock stops, for every implementation alike.
    let pending = UntimedRelease()
    workloads.append(
        Workload(
            name: "anon-prefault",
            bytes: anonymous,
            baseline: "raw-map-populate",
            implementations: [
                Implementation(name: "raw-map-populate") {
                    let base = rawMap(anonymous, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1)
                    pending.unmapLater(base, anonymous)
                    return residentPages(base, anonymous)
                },
                Implementation(name: "raw-madvise-1-thread") {
                    let base = rawMap(anonymous, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1)
                    pending.unmapLater(base, anonymous)
                    madvise(base, anonymous, MADV_NOHUGEPAGE)
                    precondition(madvise(base, anonymous, rawMadvPopulateWrite) == 0, "MADV_POPULATE_WRITE failed")
                    return residentPages(base, anonymous)
                },
                // The kernel's own ceiling for the threaded rows: what a C programmer writes, one
                // pthread per extra chunk, each a MADV_POPULATE_WRITE.
                Implementation(name: "raw-madvise-\(threads)-threads") {
                    let base = rawMap(anonymous, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1)
                    pending.unmapLater(base, anonymous)
                    madvise(base, anonymous, MADV_NOHUGEPAGE)
                    rawPopulateWrite(base, anonymous, threads: threads)
                    return residentPages(base, anonymous)
                },
                Implementation(name: "mmapkit-1-thread") {
                    let map = try populatedAnonymous(anonymous, threads: 1)
                    let pages = UInt64(try map.residency().residentCount)
                    pending.keep(map)
                    return pages
                },
                Implementation(name: "mmapkit-\(threads)-threads") {
                    let map = try populatedAnonymous(anonymous, threads: threads)
                    let pages = UInt64(try map.residency().residentCount)
                    pending.keep(map)
                    return pages
                },
            ],
            prepare: touchAndFreeAnonymous,
            release: { pending.release() }
        )
    )

    // MARK: file-populate: the data file (hot in the page cache: the runner re-reads it before
    // each workload) mapped read-only and prefaulted for reading, counted with mincore, unmapped.
    let data = files.data
    workloads.append(
        Workload(
            name: "file-populate",
            bytes: files.dataSize,
            baseline: "raw-map-populate",
            implementations: [
                Implementation(name: "raw-map-populate") {
                    let fd = rawOpen(data)
                    let length = rawSize(fd)
                    let base = rawMap(length, PROT_READ, MAP_SHARED | MAP_POPULATE, fd)
                    close(fd)
                    let pages = residentPages(base, length)
                    munmap(base, length)
                    return pages
                },
                Implementation(name: "raw-madvise-1-thread") {
                    let fd = rawOpen(data)
                    let length = rawSize(fd)
                    let base = rawMap(length, PROT_READ, MAP_SHARED, fd)
                    close(fd)
                    precondition(madvise(base, length, rawMadvPopulateRead) == 0, "MADV_POPULATE_READ failed")
                    let pages = residentPages(base, length)
                    munmap(base, length)
                    return pages
                },
                Implementation(name: "mmapkit-\(threads)-threads") {
                    let map = try Mmap(path: data)
                    try map.populate(threads: threads)
                    return UInt64(try map.residency().residentCount)
                },
            ]
        )
    )
    return workloads
}

/// MmapKit's side of anon-populate and anon-prefault: `length` bytes of private anonymous memory
/// in 4 KiB pages, prefaulted for writing on `threads` threads.
func populatedAnonymous(_ length: Int, threads: Int) throws -> MutableMmap {
    var map = try MutableMmap(anonymous: length)
    try map.advise(.noHugePage)
    try map.populateForWriting(threads: threads)
    return map
}

/// `MADV_POPULATE_WRITE` of `[base, base + length)` split into `threads` chunks of whole pages,
/// the first on this thread and each other on a pthread of its own, joined before returning.
func rawPopulateWrite(_ base: UnsafeMutableRawPointer, _ length: Int, threads: Int) {
    final class Chunk {
        let start: UnsafeMutableRawPointer
        let length: Int
        init(_ start: UnsafeMutableRawPointer, _ length: Int) {
            self.start = start
            self.length = length
        }
    }
    let chunk = (length / threads + 4095) / 4096 * 4096
    var started: [pthread_t] = []
    for index in 1..<threads where index * chunk < length {
        let argument = Unmanaged.passRetained(Chunk(base + index * chunk, min(chunk, length - index * chunk)))
        var thread = pthread_t()
        let error = pthread_create(
            &thread,
            nil,
            { argument in
                let chunk = Unmanaged<Chunk>.fromOpaque(argument!).takeRetainedValue()
                precondition(
                    madvise(chunk.start, chunk.length, rawMadvPopulateWrite) == 0,
                    "MADV_POPULATE_WRITE failed"
                )
                return nil
            },
            argument.toOpaque()
        )
        precondition(error == 0, "pthread_create failed")
        started.append(thread)
    }
    precondition(madvise(base, min(chunk, length), rawMadvPopulateWrite) == 0, "MADV_POPULATE_WRITE failed")
    for thread in started { pthread_join(thread, nil) }
}

/// A mapping that a timed run made and the runner unmaps after the clock stops
/// (``Workload/release``): a raw one by munmap, an MmapKit one by dropping the handle.
final class UntimedRelease: @unchecked Sendable {
    private var raw: (UnsafeMutableRawPointer, Int)?
    private var handle: MutableMmap?

    func unmapLater(_ base: UnsafeMutableRawPointer, _ length: Int) { raw = (base, length) }

    func keep(_ map: consuming MutableMmap) { handle = consume map }

    func release() {
        if let (base, length) = raw { munmap(base, length) }
        raw = nil
        handle = nil  // its deinit unmaps
    }
}

// MARK: - Framed records through a ring

/// The record stream of the ring-records workloads: record i is 16 to 512 bytes in all (sizes
/// from xorshift64* seeded 42), a 2-byte little-endian total length, then payload bytes copied
/// from a 1 MiB pattern at a position that moves with i.
final class RecordStream: @unchecked Sendable {
    let source: UnsafeMutableRawBufferPointer
    let records: Int

    init(records: Int) {
        self.records = records
        source = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
        for i in 0..<source.count { source[i] = DataFiles.patternByte(i) }
    }

    deinit { source.deallocate() }

    /// The producer's state: the next record and its size.
    struct Cursor {
        var generator = XorShift64Star()
        var index = 0
        var size = 0

        init() { advance() }

        @inline(__always)
        mutating func advance() {
            size = 16 + Int(generator.next() >> 33) % 497
        }
    }

    /// Writes the record at `cursor` to `destination` (at least `cursor.size` bytes) in one go.
    @inline(__always)
    func write(_ cursor: Cursor, to destination: UnsafeMutableRawPointer) {
        destination.storeBytes(of: UInt16(cursor.size).littleEndian, as: UInt16.self)
        let from = (cursor.index &* 4099) % (source.count - 512)
        destination.advanced(by: 2).copyMemory(from: source.baseAddress! + from, byteCount: cursor.size - 2)
    }
}

/// The parse of one record's payload: its size plus the wrapping sum of its little-endian words
/// (unaligned) and of its remaining bytes.
@inline(__always)
func parseRecord(_ record: UnsafeRawPointer, size: Int) -> UInt64 {
    var sum = UInt64(size)
    let payload = record + 2
    let length = size - 2
    var offset = 0
    while offset + 8 <= length {
        sum &+= payload.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        offset &+= 8
    }
    while offset < length {
        sum &+= UInt64(payload.load(fromByteOffset: offset, as: UInt8.self))
        offset &+= 1
    }
    return sum
}

/// The records through an ``MmapByteQueue``: written in place into its free space and parsed in
/// place from its readable bytes, which are contiguous even across the end of the ring. One
/// thread alternates: fill the free space with whole records, then parse every whole record.
func recordsThroughMirroredQueue(_ stream: RecordStream, capacity: Int) throws -> UInt64 {
    let queue = try MmapByteQueue(capacity: capacity)
    var cursor = RecordStream.Cursor()
    var received = 0
    var sum: UInt64 = 0
    while received < stream.records {
        queue.withWritableBytes { span in
            span.withUnsafeMutableBytes { free in
                var offset = 0
                while cursor.index < stream.records && free.count - offset >= cursor.size {
                    stream.write(cursor, to: free.baseAddress! + offset)
                    offset &+= cursor.size
                    cursor.index &+= 1
                    cursor.advance()
                }
                return offset
            }
        }
        queue.withReadableBytes { span in
            span.withUnsafeBytes { queued in
                var offset = 0
                while queued.count - offset >= 2 {
                    let size = Int(UInt16(littleEndian: queued.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
                    guard queued.count - offset >= size else { break }
                    sum &+= parseRecord(queued.baseAddress! + offset, size: size)
                    offset &+= size
                    received &+= 1
                }
                return (consumed: offset, result: ())
            }
        }
    }
    return sum
}

/// The baseline: the same single-producer/single-consumer ring over an ordinary buffer. A record
/// that crosses the end is written in two pieces, and copied into scratch space before it is
/// parsed; every other record is parsed in place.
func recordsThroughPlainRing(_ stream: RecordStream, capacity: Int) -> UInt64 {
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 4096)
    defer { buffer.deallocate() }
    let scratch = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 64)
    defer { scratch.deallocate() }
    let head = Atomic<Int>(0)  // as MmapByteQueue: positions published with release/acquire
    let tail = Atomic<Int>(0)
    var cursor = RecordStream.Cursor()
    var received = 0
    var sum: UInt64 = 0
    while received < stream.records {
        // Produce: whole records into the free space, split at the end of the buffer.
        var produced = tail.load(ordering: .relaxed)
        let free = capacity - (produced - head.load(ordering: .acquiring))
        var used = 0
        while cursor.index < stream.records && free - used >= cursor.size {
            let start = produced % capacity
            if start + cursor.size <= capacity {
                stream.write(cursor, to: buffer + start)
            } else {
                stream.write(cursor, to: scratch)
                let first = capacity - start
                (buffer + start).copyMemory(from: scratch, byteCount: first)
                buffer.copyMemory(from: scratch + first, byteCount: cursor.size - first)
            }
            produced &+= cursor.size
            used &+= cursor.size
            cursor.index &+= 1
            cursor.advance()
        }
        tail.store(produced, ordering: .releasing)
        // Consume: parse whole records, copying a record that wraps into scratch first.
        var consumed = head.load(ordering: .relaxed)
        let available = tail.load(ordering: .acquiring) - consumed
        var offset = 0
        while available - offset >= 2 {
            let start = consumed % capacity
            let size =
                start + 2 <= capacity
                ? Int(UInt16(littleEndian: (buffer + start).loadUnaligned(as: UInt16.self)))
                : Int(buffer.load(fromByteOffset: start, as: UInt8.self))
                    | Int(buffer.load(as: UInt8.self)) << 8
            guard available - offset >= size else { break }
            if start + size <= capacity {
                sum &+= parseRecord(buffer + start, size: size)
            } else {
                let first = capacity - start
                scratch.copyMemory(from: buffer + start, byteCount: first)
                (scratch + first).copyMemory(from: buffer, byteCount: size - first)
                sum &+= parseRecord(scratch, size: size)
            }
            consumed &+= size
            offset &+= size
            received &+= 1
        }
        head.store(consumed, ordering: .releasing)
    }
    return sum
}

/// ring-records-64k and ring-records-4k: `bytes` of records (about 264 bytes each) through a
/// ring of that capacity.
func makeRecordWorkloads(bytes: Int) -> [Workload] {
    let stream = RecordStream(records: max(bytes / 264, 1))
    return [(64 << 10, "64k"), (4 << 10, "4k")].map { capacity, label in
        Workload(
            name: "ring-records-\(label)",
            bytes: stream.records * 264,
            baseline: "plain-ring",
            implementations: [
                Implementation(name: "plain-ring") { recordsThroughPlainRing(stream, capacity: capacity) },
                Implementation(name: "mmapkit-mirrored") {
                    try recordsThroughMirroredQueue(stream, capacity: capacity)
                },
            ]
        )
    }
}
