import Benchmark
import Glibc
import MmapKit

// package-benchmark suites: heap allocations per operation (malloc counters) and the span path
// against withUnsafeBytes. Each iteration is one operation (scaling factor 1), so the
// mallocCountTotal column reads as "allocations per operation".

/// A file of `count` bytes in /tmp, created once for the suite.
private func makeFile(_ count: Int) -> String {
    let path = "/tmp/mmapkit-benchmarks-\(getpid())-\(count)"
    let fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0o644)
    precondition(fd >= 0 && ftruncate(fd, off_t(count)) == 0, "cannot create \(path)")
    close(fd)
    return path
}

@inline(__always)
private func sumSpan(_ bytes: RawSpan) -> UInt64 {
    var sum: UInt64 = 0
    for i in 0..<(bytes.byteCount / 8) { sum &+= bytes.unsafeLoad(fromByteOffset: i &* 8, as: UInt64.self) }
    return sum
}

/// Pseudo-random word reads (xorshift64*, seeded 42) through the span of a mapping.
@inline(never)
private func randomReads(_ map: consuming Mmap, reads: Int) -> UInt64 {
    let bytes = map.bytes
    let words = UInt64(bytes.byteCount / 8)
    var x: UInt64 = 42
    var sum: UInt64 = 0
    for _ in 0..<reads {
        x ^= x >> 12
        x ^= x << 25
        x ^= x >> 27
        sum &+= bytes.unsafeLoad(fromByteOffset: Int((x &* 0x2545_F491_4F6C_DD1D) % words) &* 8, as: UInt64.self)
    }
    return sum
}

@inline(never)
private func byteCount(_ map: borrowing Mmap) -> Int { map.bytes.byteCount }

@inline(__always)
private func sumPointer(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var sum: UInt64 = 0
    for i in 0..<(bytes.count / 8) { sum &+= bytes.load(fromByteOffset: i &* 8, as: UInt64.self) }
    return sum
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .syscalls],
        warmupIterations: 10,
        scalingFactor: .one,
        maxDuration: .seconds(2),
        maxIterations: 20_000
    )
    let small = makeFile(65536)
    let large = makeFile(64 << 20)
    // Set up once, outside the measured closures, so that only the operation is counted.
    let smallRead = open(small, O_RDONLY | O_CLOEXEC)
    let smallWrite = open(small, O_RDWR | O_CLOEXEC)
    let largeRead = open(large, O_RDONLY | O_CLOEXEC)
    let views = try! ViewBox(Mmap(fileDescriptor: largeRead).share())
    let targetWrite = open(makeFile(16 << 20), O_RDWR | O_CLOEXEC)

    Benchmark("Mmap map+unmap (64 KiB file)") { benchmark in
        for _ in benchmark.scaledIterations {
            let map = try Mmap(fileDescriptor: smallRead)
            blackHole(map.count)
        }
    }

    Benchmark("raw mmap+munmap (64 KiB file)") { benchmark in
        for _ in benchmark.scaledIterations {
            var st = stat()
            fstat(smallRead, &st)
            let base = mmap(nil, Int(st.st_size), PROT_READ, MAP_SHARED, smallRead, 0)
            blackHole(base)
            munmap(base, Int(st.st_size))
        }
    }

    Benchmark("MutableMmap map+unmap (64 KiB anonymous)") { benchmark in
        for _ in benchmark.scaledIterations {
            let map = try MutableMmap(anonymous: 65536)
            blackHole(map.count)
        }
    }

    Benchmark("MutableMmap map+unmap (64 KiB file, shared)") { benchmark in
        for _ in benchmark.scaledIterations {
            let map = try MutableMmap(fileDescriptor: smallWrite)
            blackHole(map.count)
        }
    }

    Benchmark("MutableMmap map+share+unmap (64 KiB anonymous)") { benchmark in
        for _ in benchmark.scaledIterations {
            let view = try MutableMmap(anonymous: 65536).share()
            blackHole(view.count)
        }
    }

    Benchmark("MmapView split") { benchmark in
        for _ in benchmark.scaledIterations {
            let tail = try views.view.split(at: views.view.count)
            blackHole(tail.count)
        }
    }

    // The workloads of BENCHMARKS.md at 64 MiB (mmapkit bench runs them at 1 GiB against raw,
    // Foundation and pread); here they report time per operation and allocations.
    Benchmark("random 100k reads (64 MiB)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(randomReads(try Mmap(fileDescriptor: largeRead), reads: 100_000))
        }
    }

    Benchmark("anon-touch 64 MiB") { benchmark in
        for _ in benchmark.scaledIterations {
            var map = try MutableMmap(anonymous: 64 << 20)
            var bytes = map.mutableBytes
            for offset in stride(from: 0, to: 64 << 20, by: 4096) {
                bytes.storeBytes(of: 1, toByteOffset: offset, as: UInt8.self)
            }
        }
    }

    Benchmark("anon-touch 64 MiB, transparent huge pages") { benchmark in
        for _ in benchmark.scaledIterations {
            var map = try MutableMmap(anonymous: 64 << 20, options: MmapOptions().hugePages(.transparent))
            var bytes = map.mutableBytes
            for offset in stride(from: 0, to: 64 << 20, by: 4096) {
                bytes.storeBytes(of: 1, toByteOffset: offset, as: UInt8.self)
            }
        }
    }

    Benchmark("write-flush 16 MiB") { benchmark in
        for _ in benchmark.scaledIterations {
            var map = try MutableMmap(fileDescriptor: targetWrite)
            var bytes = map.mutableBytes
            for i in 0..<((16 << 20) / 8) {
                bytes.storeBytes(of: UInt64(i) &* 0x9E37_79B9_7F4A_7C15, toByteOffset: i &* 8, as: UInt64.self)
            }
            try map.flush()
        }
    }

    Benchmark("scan 64 MiB: bytes (RawSpan)") { benchmark in
        let map = try Mmap(fileDescriptor: largeRead, options: MmapOptions().populate())
        for _ in benchmark.scaledIterations { blackHole(sumSpan(map.bytes)) }
    }

    // A span of a *local* noncopyable binding costs one heap box in Swift 6.3.1 (the compiler's
    // AllocBoxToStack does not handle the span's lifetime dependence: swiftlang/swift#89145);
    // through a `borrowing` parameter it costs none. These two measure both.
    Benchmark("span of a local Mmap (1 box, compiler limitation)") { benchmark in
        for _ in benchmark.scaledIterations {
            let map = try Mmap(fileDescriptor: smallRead)
            blackHole(map.bytes.byteCount)
        }
    }

    Benchmark("Mmap map+unmap by path (64 KiB file)") { benchmark in
        for _ in benchmark.scaledIterations {
            let map = try Mmap(path: small)
            blackHole(map.count)
        }
    }

    // The natural code for a header read on a local binding: a value-returning load takes no
    // span of the binding, so it needs no box.
    Benchmark("safe load of a local Mmap (by path)") { benchmark in
        for _ in benchmark.scaledIterations {
            let map = try Mmap(path: small)
            blackHole(map.load(fromByteOffset: 8, as: UInt64.self, byteOrder: .littleEndian))
        }
    }

    Benchmark("typed span of a local Mmap (1 box, compiler limitation)") { benchmark in
        for _ in benchmark.scaledIterations {
            let map = try Mmap(fileDescriptor: smallRead)
            blackHole(map.bytes.span(of: UInt64.self).count)
        }
    }

    // The closure-taking twin of `bytes`: the same span, lent to a closure, so the binding
    // needs no box.
    Benchmark("withBytes of a local Mmap") { benchmark in
        for _ in benchmark.scaledIterations {
            let map = try Mmap(fileDescriptor: smallRead)
            blackHole(map.withBytes { $0.byteCount })
        }
    }

    Benchmark("typed span in withBytes of a local Mmap") { benchmark in
        for _ in benchmark.scaledIterations {
            let map = try Mmap(fileDescriptor: smallRead)
            blackHole(map.withBytes { $0.span(of: UInt64.self).count })
        }
    }

    Benchmark("withMutableBytes of a local MutableMmap (anonymous)") { benchmark in
        for _ in benchmark.scaledIterations {
            var map = try MutableMmap(anonymous: 65536)
            blackHole(map.withMutableBytes { $0.byteCount })
        }
    }

    Benchmark("span through a borrowing parameter") { benchmark in
        for _ in benchmark.scaledIterations {
            let map = try Mmap(fileDescriptor: smallRead)
            blackHole(byteCount(map))
        }
    }

    Benchmark("scan 64 MiB: withUnsafeBytes") { benchmark in
        let map = try Mmap(fileDescriptor: largeRead, options: MmapOptions().populate())
        for _ in benchmark.scaledIterations { blackHole(map.withUnsafeBytes { sumPointer($0) }) }
    }
}

/// A view shared by the split benchmark (created once).
final class ViewBox: @unchecked Sendable {
    var view: MmapView
    init(_ view: consuming MmapView) { self.view = view }
}
