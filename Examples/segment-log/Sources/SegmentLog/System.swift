import Glibc

// The few system calls the log makes itself, beside MmapKit: opening and locking the file,
// stat for truncation and replacement, and the page-cache calls MmapGrowableFile does not
// offer (ranged msync, madvise, posix_fadvise). Each returns or throws; errno is read at once.

enum System {
    static func open(_ path: String, _ flags: CInt, mode: mode_t = 0o644) throws(SegmentLogError) -> CInt {
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        guard fd >= 0 else { throw error("open \(path)") }
        return fd
    }

    static func error(_ what: String, _ e: CInt = Glibc.errno) -> SegmentLogError {
        let code: SegmentLogError.Code = e == ENOSPC ? .noSpace : .system
        return SegmentLogError(code, "\(what): \(String(cString: strerror(e))) (errno \(e))", errno: e)
    }

    struct Identity: Equatable {
        var device: UInt64
        var inode: UInt64
    }

    static func status(_ fd: CInt) throws(SegmentLogError) -> (size: Int, identity: Identity) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw error("fstat") }
        return (Int(st.st_size), Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino)))
    }

    /// The identity of the file at `path`, or nil if there is none.
    static func identity(path: String) -> Identity? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    static func lockExclusive(_ fd: CInt, path: String) throws(SegmentLogError) {
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = Glibc.errno
            if e == EINTR { continue }
            if e == EWOULDBLOCK { throw SegmentLogError(.locked, "\(path) is open by another writer", errno: e) }
            throw error("flock \(path)", e)
        }
    }

    static func dataSync(_ fd: CInt) throws(SegmentLogError) {
        guard fdatasync(fd) == 0 else { throw error("fdatasync") }
    }

    /// `fsync(2)` of the directory holding `path`, so that a new file's name is durable.
    static func syncDirectory(of path: String) throws(SegmentLogError) {
        let dir: String
        if let slash = path.lastIndex(of: "/") {
            dir = slash == path.startIndex ? "/" : String(path[..<slash])
        } else {
            dir = "."
        }
        let fd = try open(dir, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw error("fsync \(dir)") }
    }

    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    static func alignDown(_ x: Int) -> Int { x & ~(pageSize - 1) }
    static func alignUp(_ x: Int) -> Int { (x + pageSize - 1) & ~(pageSize - 1) }

    /// `msync(MS_SYNC)` of `range` of the mapping at `base` (start aligned down to the page).
    static func msync(base: UnsafeRawPointer, range: Range<Int>) throws(SegmentLogError) {
        let start = alignDown(range.lowerBound)
        guard range.upperBound > start else { return }
        guard Glibc.msync(UnsafeMutableRawPointer(mutating: base + start), range.upperBound - start, MS_SYNC) == 0
        else { throw error("msync of bytes \(start)..<\(range.upperBound)") }
    }

    /// The whole pages inside `range` (rounded inward): eviction must not drop a page that
    /// also holds bytes outside the range.
    static func innerPages(_ range: Range<Int>) -> Range<Int> {
        let lo = alignUp(range.lowerBound)
        let hi = alignDown(range.upperBound)
        return lo < hi ? lo..<hi : lo..<lo
    }

    static func adviseDontNeed(base: UnsafeRawPointer, range: Range<Int>) throws(SegmentLogError) {
        guard !range.isEmpty else { return }
        guard madvise(UnsafeMutableRawPointer(mutating: base + range.lowerBound), range.count, MADV_DONTNEED) == 0
        else { throw error("madvise(MADV_DONTNEED)") }
    }

    static func fadviseDontNeed(_ fd: CInt, range: Range<Int>) throws(SegmentLogError) {
        guard !range.isEmpty else { return }
        let e = posix_fadvise(fd, off_t(range.lowerBound), off_t(range.count), POSIX_FADV_DONTNEED)
        guard e == 0 else { throw error("posix_fadvise(DONTNEED)", e) }
    }
}

// `Array.withUnsafeBytes` rethrows untyped errors; these keep the error's type.
extension Array where Element == UInt8 {
    @inline(__always)
    func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let result: Result<R, E> = withUnsafeBytes { b in Result { () throws(E) -> R in try body(b) } }
        return try result.get()
    }

    @inline(__always)
    mutating func withMutableBytes<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let result: Result<R, E> = withUnsafeMutableBytes { b in Result { () throws(E) -> R in try body(b) } }
        return try result.get()
    }
}
