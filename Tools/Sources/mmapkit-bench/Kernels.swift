import Glibc
import MmapKit

// The inner loops, shared by every implementation so that only the mapping code differs.

/// Wrapping sum of the little-endian UInt64 words of `bytes` through a raw pointer.
@inline(__always)
func sumWords(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var sum: UInt64 = 0
    let words = bytes.count / 8
    guard let base = bytes.baseAddress else { return 0 }
    var i = 0
    while i < words {
        sum &+= base.load(fromByteOffset: i &* 8, as: UInt64.self)
        i &+= 1
    }
    return sum
}

/// Wrapping sum of the words of a typed span (MmapKit's `span(of:)`): the safe path.
@inline(__always)
func sumWords(_ words: Span<UInt64>) -> UInt64 {
    var sum: UInt64 = 0
    for i in words.indices {
        sum &+= words[i]
    }
    return sum
}

/// Wrapping sum of the little-endian UInt64 words of `bytes` through `RawSpan.unsafeLoad` (what
/// the standard library offers without MmapKit's typed access).
@inline(__always)
func sumWords(_ bytes: RawSpan) -> UInt64 {
    var sum: UInt64 = 0
    let words = bytes.byteCount / 8
    var i = 0
    while i < words {
        sum &+= bytes.unsafeLoad(fromByteOffset: i &* 8, as: UInt64.self)
        i &+= 1
    }
    return sum
}

/// Wrapping sum of the words of `bytes`, `chunk` bytes at a time, each chunk a typed span.
@inline(__always)
func sumChunks(_ bytes: RawSpan, chunk: Int) -> UInt64 {
    var sum: UInt64 = 0
    var start = 0
    while start < bytes.byteCount {
        let end = min(start + chunk, bytes.byteCount)
        sum &+= sumWords(bytes.extracting(start..<end).span(of: UInt64.self))
        start = end
    }
    return sum
}

/// xorshift64* seeded 42, as BENCHMARKS.md prescribes.
struct XorShift64Star {
    var x: UInt64 = 42
    @inline(__always)
    mutating func next() -> UInt64 {
        x ^= x >> 12
        x ^= x << 25
        x ^= x >> 27
        return x &* 0x2545_F491_4F6C_DD1D
    }
}

/// Sum of `reads` words at pseudo-random word offsets of `bytes`.
@inline(__always)
func randomSum(_ bytes: UnsafeRawBufferPointer, reads: Int) -> UInt64 {
    var generator = XorShift64Star()
    let words = UInt64(bytes.count / 8)
    guard let base = bytes.baseAddress, words > 0 else { return 0 }
    var sum: UInt64 = 0
    for _ in 0..<reads {
        sum &+= base.load(fromByteOffset: Int(generator.next() % words) &* 8, as: UInt64.self)
    }
    return sum
}

/// Sum of `reads` words at pseudo-random indices of a typed span (MmapKit's `span(of:)`): the
/// safe path. Each index is bounds-checked; the optimizer removes the check, as `x % count` is
/// provably in range.
@inline(__always)
func randomSum(_ words: Span<UInt64>, reads: Int) -> UInt64 {
    var generator = XorShift64Star()
    let count = UInt64(words.count)
    guard count > 0 else { return 0 }
    var sum: UInt64 = 0
    for _ in 0..<reads {
        sum &+= words[Int(generator.next() % count)]
    }
    return sum
}

/// Sum of `reads` words at pseudo-random word offsets of `bytes`, through a raw pointer with the
/// bounds check a safe byte-offset API makes (the baseline of `random-checked`).
@inline(__always)
func randomSumChecked(_ bytes: UnsafeRawBufferPointer, reads: Int) -> UInt64 {
    var generator = XorShift64Star()
    let length = bytes.count
    let words = UInt64(length / 8)
    guard let base = bytes.baseAddress, words > 0 else { return 0 }
    var sum: UInt64 = 0
    for _ in 0..<reads {
        let offset = Int(generator.next() % words) &* 8
        precondition(UInt(bitPattern: offset) <= UInt(length) && 8 <= length &- offset, "out of bounds")
        sum &+= base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
    }
    return sum
}

/// Sum of `reads` little-endian words at pseudo-random word offsets of `bytes`, through MmapKit's
/// safe `load(fromByteOffset:as:byteOrder:)` (bounds-checked like `randomSumChecked`).
@inline(__always)
func randomSumLoads(_ bytes: RawSpan, reads: Int) -> UInt64 {
    var generator = XorShift64Star()
    let words = UInt64(bytes.byteCount / 8)
    guard words > 0 else { return 0 }
    var sum: UInt64 = 0
    for _ in 0..<reads {
        sum &+= bytes.load(
            fromByteOffset: Int(generator.next() % words) &* 8,
            as: UInt64.self,
            byteOrder: .littleEndian
        )
    }
    return sum
}

/// Sum of `reads` words at pseudo-random word offsets of `bytes`, through `RawSpan.unsafeLoad`.
@inline(__always)
func randomSum(_ bytes: RawSpan, reads: Int) -> UInt64 {
    var generator = XorShift64Star()
    let words = UInt64(bytes.byteCount / 8)
    guard words > 0 else { return 0 }
    var sum: UInt64 = 0
    for _ in 0..<reads {
        sum &+= bytes.unsafeLoad(fromByteOffset: Int(generator.next() % words) &* 8, as: UInt64.self)
    }
    return sum
}

/// Stores one byte per 4 KiB page; returns the number of pages touched.
@inline(__always)
func touchPages(_ bytes: UnsafeMutableRawBufferPointer) -> UInt64 {
    guard let base = bytes.baseAddress else { return 0 }
    var pages: UInt64 = 0
    var offset = 0
    while offset < bytes.count {
        base.storeBytes(of: 1, toByteOffset: offset, as: UInt8.self)
        offset &+= 4096
        pages &+= 1
    }
    return pages
}

/// Stores one byte per 4 KiB page through the span API; returns the number of pages touched.
@inline(__always)
func touchPages(_ bytes: inout MutableRawSpan) -> UInt64 {
    var pages: UInt64 = 0
    var offset = 0
    while offset < bytes.byteCount {
        bytes.storeBytes(of: 1, toByteOffset: offset, as: UInt8.self)
        offset &+= 4096
        pages &+= 1
    }
    return pages
}

/// Writes word i = i &* 0x9E3779B97F4A7C15; returns the wrapping sum of the words written.
@inline(__always)
func writeWords(_ bytes: UnsafeMutableRawBufferPointer) -> UInt64 {
    guard let base = bytes.baseAddress else { return 0 }
    var sum: UInt64 = 0
    for i in 0..<(bytes.count / 8) {
        let word = UInt64(i) &* 0x9E37_79B9_7F4A_7C15
        base.storeBytes(of: word, toByteOffset: i &* 8, as: UInt64.self)
        sum &+= word
    }
    return sum
}

/// Writes word i = i &* 0x9E3779B97F4A7C15 through the span API; returns their wrapping sum.
@inline(__always)
func writeWords(_ bytes: inout MutableRawSpan) -> UInt64 {
    var sum: UInt64 = 0
    for i in 0..<(bytes.byteCount / 8) {
        let word = UInt64(i) &* 0x9E37_79B9_7F4A_7C15
        bytes.storeBytes(of: word, toByteOffset: i &* 8, as: UInt64.self)
        sum &+= word
    }
    return sum
}

// MARK: - Raw system calls from Swift (the same-language baseline)

/// Opens `path` read-only, or exits: the benchmark's own files must exist. `withCString`, as a
/// careful programmer writes it: the implicit String-to-pointer conversion allocates.
func rawOpen(_ path: String, _ flags: CInt = O_RDONLY) -> CInt {
    let fd = path.withCString { open($0, flags | O_CLOEXEC) }
    precondition(fd >= 0, "open \(path) failed: \(String(cString: strerror(errno)))")
    return fd
}

/// The size of the file behind `fd` (fstat).
func rawSize(_ fd: CInt) -> Int {
    var st = stat()
    precondition(fstat(fd, &st) == 0, "fstat failed")
    return Int(st.st_size)
}

/// mmap or trap: the raw baseline does what a careful C programmer would, nothing more.
func rawMap(_ length: Int, _ protection: CInt, _ flags: CInt, _ fd: CInt) -> UnsafeMutableRawPointer {
    let address = mmap(nil, length, protection, flags, fd, 0)
    precondition(address != MAP_FAILED, "mmap failed: \(String(cString: strerror(errno)))")
    return address!
}
