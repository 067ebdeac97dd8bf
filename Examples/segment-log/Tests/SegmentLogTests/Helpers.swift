import Glibc
import SegmentLog

/// A fresh directory under TMPDIR, removed with everything in it when `body` returns.
func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let base = String(cString: getenv("TMPDIR") ?? strdup("/tmp"))
    var template = Array("\(base)/segment-log-test-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw SegmentLogError(.system, "mkdtemp failed") }
    let dir = String(cString: made)
    defer { _ = run(["/bin/rm", "-rf", dir]) }
    return try body(dir)
}

/// Runs a program to completion; returns its wait status and standard output.
@discardableResult
func run(_ arguments: [String]) -> (status: CInt, output: String) {
    guard let child = try? ChildProcess(arguments, captureOutput: true) else { return (-1, "") }
    let output = child.readAll()
    close(child.output)
    return (child.wait(), String(decoding: output, as: UTF8.self))
}

/// The example's tool, built beside the test bundle.
var toolPath: String {
    let exe = ChildProcess.currentExecutable
    return String(exe[..<exe.lastIndex(of: "/")!]) + "/segment-log"
}

/// Raw file access, as another process would do it.
func fileSize(_ path: String) -> Int {
    var st = stat()
    return stat(path, &st) == 0 ? Int(st.st_size) : -1
}

func pwriteBytes(_ path: String, _ bytes: [UInt8], at offset: Int) {
    let fd = open(path, O_WRONLY)
    precondition(fd >= 0)
    _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
    close(fd)
}

func preadBytes(_ path: String, _ range: Range<Int>) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    precondition(fd >= 0)
    var bytes = [UInt8](repeating: 0, count: range.count)
    _ = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(range.lowerBound)) }
    close(fd)
    return bytes
}

/// Appends `count` pattern records durably.
func appendPattern(_ log: inout SegmentLog, count: Int) throws {
    for _ in 0..<count { try log.append(Pattern.payload(seq: UInt64(log.count + 1))) }
}

func checkAll(_ log: borrowing SegmentLog) throws -> Bool {
    for i in 0..<log.count where try log.read(at: i) != Pattern.payload(seq: UInt64(i + 1)) { return false }
    return true
}

/// Every byte of the file at `path`.
func wholeFile(_ path: String) -> [UInt8] {
    preadBytes(path, 0..<fileSize(path))
}

/// A log of `count` durable pattern records at `path`; returns its index.
func makeCommittedLog(_ path: String, count: Int = 20) throws -> RecordIndex {
    var log = try SegmentLog(path: path)
    try appendPattern(&log, count: count)
    return log.index
}

/// A little-endian UInt64 as bytes.
func bytesOf(_ value: UInt64) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { Array($0) }
}

/// Runs `body` with a tmpfs of `size` mounted under `dir` (root only), unmounted afterwards.
func withSmallTmpfs(in dir: String, size: String, _ body: (String) throws -> Void) throws {
    let mountPoint = dir + "/small"
    guard mkdir(mountPoint, 0o755) == 0, mount("tmpfs", mountPoint, "tmpfs", 0, "size=\(size)") == 0 else {
        throw SegmentLogError(.system, "mount tmpfs failed: errno \(errno)")
    }
    defer { umount2(mountPoint, Int32(MNT_DETACH)) }
    try body(mountPoint)
}

/// Fills the file system holding `path` (a new file) until `fallocate` fails; returns the bytes taken.
@discardableResult
func fillDisk(_ path: String) -> Int {
    let fd = open(path, O_CREAT | O_WRONLY, 0o644)
    precondition(fd >= 0)
    defer { close(fd) }
    var size = 0
    var chunk = 64 << 10
    while chunk >= 4096 {
        if posix_fallocate(fd, off_t(size), off_t(chunk)) == 0 { size += chunk } else { chunk /= 2 }
    }
    return size
}

/// Creates (or replaces) `path` with `bytes`.
func pwriteBytesCreating(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0o644)
    precondition(fd >= 0)
    _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    close(fd)
}

/// Whether the file at `path` still holds exactly `bytes` (a Bool, so a failure does not print
/// the file).
func isUnchanged(_ path: String, since bytes: [UInt8]) -> Bool {
    wholeFile(path) == bytes
}
