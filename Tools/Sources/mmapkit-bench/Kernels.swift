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

/// Wrapping sum of the little-endian UInt64 words of `bytes` through the safe span API.
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

/// Sum of `reads` words at pseudo-random word offsets of `bytes`, through the span API.
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

/// Opens `path` read-only, or exits: the benchmark's own files must exist.
func rawOpen(_ path: String, _ flags: CInt = O_RDONLY) -> CInt {
    let fd = open(path, flags | O_CLOEXEC)
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
