import Dispatch
import Foundation
import Glibc
import MmapKit
import Synchronization

/// One way of doing a workload: a name and a closure that does the timed work and returns a
/// checksum that must agree with every other implementation's.
struct Implementation {
    let name: String
    let run: () throws -> UInt64
}

/// A workload of BENCHMARKS.md: its implementations (the first one named `baseline` is what
/// ratios are taken against), the bytes it moves (for throughput), and untimed preparation.
struct Workload {
    let name: String
    let bytes: Int
    let baseline: String
    let implementations: [Implementation]
    var prepare: () -> Void = {}
    /// Untimed, after each implementation's run: releases what the run left for it (see
    /// ``UntimedRelease``), so that a workload can time setting memory up without tearing it down.
    var release: () -> Void = {}
}

/// Sizes for one run.
struct BenchSizes {
    let data: Int
    let target: Int
    let anonymous: Int
    let cycles: Int
    let randomReads: Int
    let guardIterations: Int

    static func make(quick: Bool, size: Int?) -> BenchSizes {
        let data = size ?? (quick ? 64 << 20 : 1 << 30)
        return BenchSizes(
            data: data,
            target: quick ? 16 << 20 : max(data / 4, 1 << 20),
            anonymous: data,
            cycles: quick ? 2_000 : 20_000,
            randomReads: 1_000_000,
            guardIterations: quick ? 200_000 : 1_000_000
        )
    }
}

/// Builds every workload over `files`.
func makeWorkloads(files: DataFiles, sizes: BenchSizes, threads: Int) -> [Workload] {
    let data = files.data
    let dataURL = URL(fileURLWithPath: data)
    let small = files.data64k
    let smallURL = URL(fileURLWithPath: small)
    let size = files.dataSize
    var workloads: [Workload] = []

    // MARK: scan, scan with populate
    for populate in [false, true] {
        var implementations = [
            Implementation(name: "raw") {
                let fd = rawOpen(data)
                let length = rawSize(fd)
                let base = rawMap(length, PROT_READ, MAP_SHARED | (populate ? MAP_POPULATE : 0), fd)
                close(fd)
                let sum = sumWords(UnsafeRawBufferPointer(start: base, count: length))
                munmap(base, length)
                return sum
            },
            Implementation(name: "mmapkit") {
                let map = try Mmap(path: data, options: MmapOptions().populate(populate))
                return sumWords(map.bytes.span(of: UInt64.self))
            },
            Implementation(name: "mmapkit-rawspan") {
                let map = try Mmap(path: data, options: MmapOptions().populate(populate))
                return sumWords(map.bytes)
            },
            Implementation(name: "mmapkit-unsafe") {
                let map = try Mmap(path: data, options: MmapOptions().populate(populate))
                return map.withUnsafeBytes { sumWords($0) }
            },
        ]
        if !populate {
            implementations.append(
                Implementation(name: "foundation-data") {
                    let bytes = try Data(contentsOf: dataURL, options: .alwaysMapped)
                    return bytes.withUnsafeBytes { sumWords($0) }
                }
            )
        }
        workloads.append(
            Workload(
                name: populate ? "scan-populate" : "scan",
                bytes: size,
                baseline: "raw",
                implementations: implementations
            )
        )
    }

    // MARK: random
    let reads = sizes.randomReads
    workloads.append(
        Workload(
            name: "random",
            bytes: reads * 8,
            baseline: "raw",
            implementations: [
                Implementation(name: "raw") {
                    let fd = rawOpen(data)
                    let length = rawSize(fd)
                    let base = rawMap(length, PROT_READ, MAP_SHARED, fd)
                    close(fd)
                    let sum = randomSum(UnsafeRawBufferPointer(start: base, count: length), reads: reads)
                    munmap(base, length)
                    return sum
                },
                Implementation(name: "mmapkit") {
                    let map = try Mmap(path: data)
                    return randomSum(map.bytes.span(of: UInt64.self), reads: reads)
                },
                Implementation(name: "mmapkit-unsafe") {
                    let map = try Mmap(path: data)
                    return map.withUnsafeBytes { randomSum($0, reads: reads) }
                },
                Implementation(name: "foundation-data") {
                    let bytes = try Data(contentsOf: dataURL, options: .alwaysMapped)
                    return bytes.withUnsafeBytes { randomSum($0, reads: reads) }
                },
            ]
        )
    )

    // MARK: random-checked: byte-offset reads that must be bounds-checked, against a raw loop
    // that makes the same check
    workloads.append(
        Workload(
            name: "random-checked",
            bytes: reads * 8,
            baseline: "raw-checked",
            implementations: [
                Implementation(name: "raw-checked") {
                    let fd = rawOpen(data)
                    let length = rawSize(fd)
                    let base = rawMap(length, PROT_READ, MAP_SHARED, fd)
                    close(fd)
                    let sum = randomSumChecked(UnsafeRawBufferPointer(start: base, count: length), reads: reads)
                    munmap(base, length)
                    return sum
                },
                Implementation(name: "mmapkit-load") {
                    let map = try Mmap(path: data)
                    return randomSumLoads(map.bytes, reads: reads)
                },
                Implementation(name: "mmapkit-rawspan") {
                    let map = try Mmap(path: data)
                    return randomSum(map.bytes, reads: reads)
                },
            ]
        )
    )

    // MARK: mapcycle-64k
    let cycles = sizes.cycles
    workloads.append(
        Workload(
            name: "mapcycle-64k",
            bytes: cycles * 65536,
            baseline: "raw",
            implementations: [
                Implementation(name: "raw") {
                    var sum: UInt64 = 0
                    for _ in 0..<cycles {
                        let fd = rawOpen(small)
                        let length = rawSize(fd)
                        let base = rawMap(length, PROT_READ, MAP_SHARED, fd)
                        sum &+= UInt64(base.load(as: UInt8.self))
                        sum &+= UInt64(base.load(fromByteOffset: length - 1, as: UInt8.self))
                        munmap(base, length)
                        close(fd)
                    }
                    return sum
                },
                Implementation(name: "mmapkit") {
                    var sum: UInt64 = 0
                    for _ in 0..<cycles {
                        let fd = rawOpen(small)
                        sum &+= try firstAndLast(Mmap(fileDescriptor: fd))  // unmapped before the close
                        close(fd)
                    }
                    return sum
                },
                Implementation(name: "mmapkit-path") {
                    var sum: UInt64 = 0
                    for _ in 0..<cycles {
                        sum &+= try firstAndLast(Mmap(path: small))
                    }
                    return sum
                },
                Implementation(name: "foundation-data") {
                    var sum: UInt64 = 0
                    for _ in 0..<cycles {
                        let bytes = try Data(contentsOf: smallURL, options: .alwaysMapped)
                        sum &+= UInt64(bytes.first!) &+ UInt64(bytes.last!)
                    }
                    return sum
                },
            ]
        )
    )

    // MARK: anon-touch, with populate, with transparent huge pages
    let anonymous = sizes.anonymous
    for variant in ["", "-populate", "-thp"] {
        let populate = variant == "-populate"
        let thp = variant == "-thp"
        let untimedTouch = {
            // Memory freed to the host is slow to touch again: touch and free the same amount
            // first, with huge pages for the THP variant so that compaction happens untimed.
            let base = rawMap(anonymous, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1)
            if thp { madvise(base, anonymous, MADV_HUGEPAGE) }
            _ = touchPages(UnsafeMutableRawBufferPointer(start: base, count: anonymous))
            munmap(base, anonymous)
        }
        workloads.append(
            Workload(
                name: "anon-touch\(variant)",
                bytes: anonymous,
                baseline: "raw",
                implementations: [
                    Implementation(name: "raw") {
                        let flags = MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0)
                        let base = rawMap(anonymous, PROT_READ | PROT_WRITE, flags, -1)
                        if thp { madvise(base, anonymous, MADV_HUGEPAGE) }
                        let pages = touchPages(UnsafeMutableRawBufferPointer(start: base, count: anonymous))
                        munmap(base, anonymous)
                        return pages
                    },
                    Implementation(name: "mmapkit") {
                        var options = MmapOptions().populate(populate)
                        if thp { options.hugePages = .transparent }
                        var map = try MutableMmap(anonymous: anonymous, options: options)
                        var bytes = map.mutableBytes
                        return touchPages(&bytes)
                    },
                ],
                prepare: untimedTouch
            )
        )
    }

    // MARK: write-flush
    let target = files.target
    workloads.append(
        Workload(
            name: "write-flush",
            bytes: files.targetSize,
            baseline: "raw",
            implementations: [
                Implementation(name: "raw") {
                    let fd = rawOpen(target, O_RDWR)
                    let length = rawSize(fd)
                    let base = rawMap(length, PROT_READ | PROT_WRITE, MAP_SHARED, fd)
                    let sum = writeWords(UnsafeMutableRawBufferPointer(start: base, count: length))
                    precondition(msync(base, length, MS_SYNC) == 0, "msync failed")
                    munmap(base, length)
                    close(fd)
                    return sum
                },
                Implementation(name: "mmapkit") {
                    let fd = rawOpen(target, O_RDWR)
                    defer { close(fd) }
                    var map = try MutableMmap(fileDescriptor: fd)
                    var bytes = map.mutableBytes
                    let sum = writeWords(&bytes)
                    try map.flush()
                    return sum
                },
            ]
        )
    )

    // MARK: read (the non-mmap alternative)
    workloads.append(
        Workload(
            name: "read",
            bytes: size,
            baseline: "pread",
            implementations: [
                Implementation(name: "pread") {
                    let fd = rawOpen(data)
                    defer { close(fd) }
                    let chunk = 1 << 20
                    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
                    defer { buffer.deallocate() }
                    var sum: UInt64 = 0
                    var offset = 0
                    while true {
                        let n = pread(fd, buffer.baseAddress, chunk, off_t(offset))
                        precondition(n >= 0, "pread failed")
                        if n == 0 { break }
                        sum &+= sumWords(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                        offset += n
                    }
                    return sum
                },
                Implementation(name: "foundation-filehandle") {
                    let handle = try FileHandle(forReadingFrom: dataURL)
                    defer { try? handle.close() }
                    var sum: UInt64 = 0
                    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                        sum &+= chunk.withUnsafeBytes { sumWords($0) }
                    }
                    return sum
                },
                Implementation(name: "mmapkit") {
                    let map = try Mmap(path: data)
                    return sumWords(map.bytes.span(of: UInt64.self))
                },
                Implementation(name: "mmapkit-chunks") {
                    // The pread loop's shape on a mapping: 1 MiB chunks, each a typed span.
                    let map = try Mmap(path: data)
                    return sumChunks(map.bytes, chunk: 1 << 20)
                },
            ]
        )
    )

    // MARK: limit-scan (memory bandwidth: the floor for scan)
    let limitBuffer = LimitBuffer(copying: data, size: size)
    workloads.append(
        Workload(
            name: "limit-scan",
            bytes: size,
            baseline: "memory",
            implementations: [
                Implementation(name: "memory") { sumWords(limitBuffer.bytes) }
            ]
        )
    )

    // MARK: views-scan (one view per core, each summed on its own thread)
    workloads.append(
        Workload(
            name: "views-scan",
            bytes: size,
            baseline: "raw",
            implementations: [
                Implementation(name: "raw") {
                    let fd = rawOpen(data)
                    let length = rawSize(fd)
                    let base = rawMap(length, PROT_READ, MAP_SHARED, fd)
                    close(fd)
                    let total = Atomic<UInt64>(0)
                    let chunk = length / threads
                    let address = UInt(bitPattern: base)
                    let group = DispatchGroup()
                    for index in 0..<threads {
                        let end = index == threads - 1 ? length : (index + 1) * chunk
                        group.enter()
                        DispatchQueue.global().async {
                            let start = UnsafeRawPointer(bitPattern: address)! + index * chunk
                            total.add(
                                sumWords(UnsafeRawBufferPointer(start: start, count: end - index * chunk)),
                                ordering: .relaxed
                            )
                            group.leave()
                        }
                    }
                    group.wait()
                    munmap(base, length)
                    return total.load(ordering: .relaxed)
                },
                Implementation(name: "mmapkit") {
                    var rest = try Mmap(path: data).share()
                    let total = Atomic<UInt64>(0)
                    let chunk = rest.count / threads
                    let group = DispatchGroup()
                    for index in 0..<threads {
                        var piece = rest
                        rest = try piece.split(at: index == threads - 1 ? piece.count : chunk)
                        let transfer = ViewTransfer(piece)
                        group.enter()
                        DispatchQueue.global().async {
                            let view = transfer.take()
                            total.add(sumWords(view.bytes.span(of: UInt64.self)), ordering: .relaxed)
                            group.leave()
                        }
                    }
                    _ = consume rest
                    group.wait()
                    return total.load(ordering: .relaxed)
                },
            ]
        )
    )

    // MARK: ring (issue 10): the mirrored SPSC queue against a plain wrap-around ring
    let streamed = size
    workloads.append(
        Workload(
            name: "ring-64k",
            bytes: streamed,
            baseline: "wraparound",
            implementations: [
                Implementation(name: "wraparound") {
                    let queue = WrapAroundQueue(capacity: 64 << 10)
                    return try streamThrough(
                        total: streamed,
                        write: { queue.write($0) },
                        read: { queue.read(into: $0) }
                    )
                },
                Implementation(name: "mmapkit-mirrored") {
                    let queue = try MmapByteQueue(capacity: 64 << 10)
                    return try streamThrough(
                        total: streamed,
                        write: { bytes in queue.write(RawSpan(_unsafeBytes: bytes)) },
                        read: { buffer in
                            var span = MutableRawSpan(_unsafeBytes: buffer)
                            return queue.read(into: &span)
                        }
                    )
                },
            ]
        )
    )

    // MARK: issue 15: parallel prefault, and framed records parsed in place from a ring
    workloads += makePopulateWorkloads(files: files, sizes: sizes, threads: threads)
    workloads += makeRecordWorkloads(bytes: size / 4)

    // MARK: guard cost (issue 5): guarded against unguarded access
    let guardIterations = sizes.guardIterations
    let guardMap = try! MutableMmap(anonymous: 1 << 20).makeReadOnly()
    let guarded = GuardTarget(guardMap)
    workloads.append(
        Workload(
            name: "guard-load-8",
            bytes: guardIterations * 8,
            baseline: "unguarded",
            implementations: [
                Implementation(name: "unguarded") {
                    guarded.map.withUnsafeBytes { bytes in
                        var sum: UInt64 = 0
                        for i in 0..<guardIterations {
                            sum &+= bytes.load(fromByteOffset: (i & 0xFFF) &* 8, as: UInt64.self)
                        }
                        return sum
                    }
                },
                Implementation(name: "guarded") {
                    var sum: UInt64 = 0
                    for i in 0..<guardIterations {
                        sum &+= try guarded.map.guardedLoad(fromByteOffset: (i & 0xFFF) &* 8, as: UInt64.self)
                    }
                    return sum
                },
            ]
        )
    )
    let copies = guardIterations / 10
    workloads.append(
        Workload(
            name: "guard-copy-4k",
            bytes: copies * 4096,
            baseline: "memcpy",
            implementations: [
                Implementation(name: "memcpy") {
                    var target = [UInt8](repeating: 0, count: 4096)
                    var sum: UInt64 = 0
                    guarded.map.withUnsafeBytes { bytes in
                        for i in 0..<copies {
                            target.withUnsafeMutableBytes { out in
                                _ = memcpy(out.baseAddress!, bytes.baseAddress! + (i & 0xFF) &* 4096, 4096)
                            }
                            sum &+= UInt64(target[i & 0xFFF])
                        }
                    }
                    return sum
                },
                Implementation(name: "guarded") {
                    var target = [UInt8](repeating: 0, count: 4096)
                    var sum: UInt64 = 0
                    for i in 0..<copies {
                        var elements = target.mutableSpan
                        var span = elements.mutableBytes
                        try guarded.map.guardedCopyBytes(fromByteOffset: (i & 0xFF) &* 4096, into: &span)
                        sum &+= UInt64(target[i & 0xFFF])
                    }
                    return sum
                },
            ]
        )
    )
    return workloads
}

/// An already-faulted anonymous copy of the data, for the memory-bandwidth floor.
final class LimitBuffer: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let size: Int
    init(copying path: String, size: Int) {
        self.size = size
        let base = rawMap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1)
        self.base = base
        let fd = rawOpen(path)
        var offset = 0
        while offset < size {
            let n = pread(fd, base + offset, size - offset, off_t(offset))
            precondition(n > 0, "pread failed")
            offset += n
        }
        close(fd)
    }
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }
    deinit { munmap(base, size) }
}

/// Moves a view to a worker thread exactly once.
final class ViewTransfer: @unchecked Sendable {
    private var view: MmapView?
    init(_ view: consuming MmapView) { self.view = consume view }
    func take() -> MmapView { view.take()! }
}

/// A read-only mapping shared by the guard-cost implementations.
final class GuardTarget: Sendable {
    let map: Mmap
    init(_ map: consuming Mmap) { self.map = map }
}

/// The first byte plus the last byte of a mapping, read through its span. Taking the span through
/// a `borrowing` parameter avoids the heap box Swift 6.3.1 gives a local noncopyable binding whose
/// span is taken (swiftlang/swift#89145); see the README.
@inline(__always)
func firstAndLast(_ map: consuming Mmap) -> UInt64 {
    firstAndLast(map.bytes)
}

/// The first byte plus the last byte.
@inline(__always)
func firstAndLast(_ bytes: RawSpan) -> UInt64 {
    UInt64(bytes.unsafeLoad(as: UInt8.self))
        &+ UInt64(bytes.unsafeLoad(fromByteOffset: bytes.byteCount - 1, as: UInt8.self))
}

// MARK: - Ring buffer streaming

/// Streams `total` bytes of the data pattern from a producer thread to this thread through a
/// queue, in 5,000-byte writes and 7,000-byte reads (neither divides the 64 KiB ring); returns
/// the wrapping sum of the bytes received.
func streamThrough(
    total: Int,
    write: @escaping @Sendable (UnsafeRawBufferPointer) -> Int,
    read: (UnsafeMutableRawBufferPointer) -> Int
) throws -> UInt64 {
    let source = (0..<(1 << 20)).map { DataFiles.patternByte($0) }
    let done = DispatchSemaphore(value: 0)
    let producer = Thread {
        source.withUnsafeBytes { bytes in
            var sent = 0
            while sent < total {
                let start = sent % (1 << 20)
                let length = min(5000, total - sent, (1 << 20) - start)
                var offset = 0
                while offset < length {
                    offset += write(UnsafeRawBufferPointer(rebasing: bytes[(start + offset)..<(start + length)]))
                }
                sent += length
            }
        }
        done.signal()
    }
    producer.start()
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 7000, alignment: 64)
    defer { buffer.deallocate() }
    var received = 0
    var sum: UInt64 = 0
    while received < total {
        let n = read(buffer)
        for i in 0..<n { sum &+= UInt64(buffer[i]) }
        received += n
    }
    done.wait()
    return sum
}

/// The baseline: the same single-producer/single-consumer queue over an ordinary buffer, which
/// must split every copy that crosses the end of the ring into two.
final class WrapAroundQueue: @unchecked Sendable {
    private let buffer: UnsafeMutableRawPointer
    private let capacity: Int
    private let head = Atomic<Int>(0)
    private let tail = Atomic<Int>(0)

    init(capacity: Int) {
        self.capacity = capacity
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 4096)
    }

    deinit { buffer.deallocate() }

    func write(_ source: UnsafeRawBufferPointer) -> Int {
        let produced = tail.load(ordering: .relaxed)
        let consumed = head.load(ordering: .acquiring)
        let length = min(capacity - (produced - consumed), source.count)
        guard length > 0 else { return 0 }
        let start = produced % capacity
        let first = min(length, capacity - start)
        (buffer + start).copyMemory(from: source.baseAddress!, byteCount: first)
        if first < length { buffer.copyMemory(from: source.baseAddress! + first, byteCount: length - first) }
        tail.store(produced + length, ordering: .releasing)
        return length
    }

    func read(into destination: UnsafeMutableRawBufferPointer) -> Int {
        let consumed = head.load(ordering: .relaxed)
        let produced = tail.load(ordering: .acquiring)
        let length = min(produced - consumed, destination.count)
        guard length > 0 else { return 0 }
        let start = consumed % capacity
        let first = min(length, capacity - start)
        destination.baseAddress!.copyMemory(from: buffer + start, byteCount: first)
        if first < length { (destination.baseAddress! + first).copyMemory(from: buffer, byteCount: length - first) }
        head.store(consumed + length, ordering: .releasing)
        return length
    }
}
