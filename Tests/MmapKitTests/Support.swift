import Foundation
import Glibc
import MmapKit
import Testing

/// Every suite is nested in this serialized suite: the live-mapping counter is process-wide,
/// so tests that check it must not overlap with tests that map.
@Suite(.serialized)
struct MmapKitTests {}

/// Runs `body` and expects the live-mapping counter to be back where it started.
func expectNoLeaks<R, E: Error>(
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws(E) -> R
) throws(E) -> R {
    let before = _MmapDiagnostics.liveMappings
    defer {
        Thread.joinAll()  // threads release what they captured only when they end
        #expect(_MmapDiagnostics.liveMappings == before, "a mapping leaked", sourceLocation: sourceLocation)
    }
    return try body()
}

/// Counts the maps and unmaps that `body` makes.
func countingCalls<E: Error>(_ body: () throws(E) -> Void) throws(E) -> (maps: Int, unmaps: Int) {
    let maps = _MmapDiagnostics.mapCalls
    let unmaps = _MmapDiagnostics.unmapCalls
    try body()
    return (_MmapDiagnostics.mapCalls - maps, _MmapDiagnostics.unmapCalls - unmaps)
}

/// Expects `body` to throw an `MmapError` with `code` (and `errno`, when given); returns it.
@discardableResult
func expectMmapError(
    _ code: MmapError.Code,
    errno expectedErrno: CInt? = nil,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws(MmapError) -> Void
) -> MmapError? {
    do {
        try body()
        Issue.record("expected an MmapError with code \(code), but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        if let expectedErrno {
            #expect(error.errno == expectedErrno, "\(error)", sourceLocation: sourceLocation)
        }
        return error
    }
}

/// A temporary directory, removed with everything in it when the value is released.
final class TemporaryDirectory: @unchecked Sendable {
    let path: String

    init() {
        var template = Array("/tmp/mmapkit-tests-XXXXXX".utf8CString)
        let result = unsafe template.withUnsafeMutableBufferPointer { unsafe mkdtemp($0.baseAddress!) }
        precondition(unsafe result != nil, "mkdtemp failed")
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// The path of `name` inside the directory.
    func file(_ name: String) -> String { "\(path)/\(name)" }

    /// Creates `name` with `bytes` and returns its path.
    @discardableResult
    func makeFile(_ name: String, bytes: [UInt8]) -> String {
        let filePath = file(name)
        let fd = unsafe open(filePath, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o644)
        precondition(fd >= 0, "cannot create \(filePath)")
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = unsafe bytes[written...].withUnsafeBytes { unsafe write(fd, $0.baseAddress, $0.count) }
            precondition(n > 0, "write failed")
            written += n
        }
        return filePath
    }

    /// Creates `name` with `count` bytes of the test pattern and returns its path.
    @discardableResult
    func makeFile(_ name: String, count: Int) -> String {
        makeFile(name, bytes: pattern(count))
    }
}

/// A recognisable byte pattern: byte i is (i * 31 + 7) mod 251.
func pattern(_ count: Int, from start: Int = 0) -> [UInt8] {
    (start..<(start + count)).map { UInt8(($0 &* 31 &+ 7) % 251) }
}

/// Opens `path` with `flags`, or fails the test.
func openFile(_ path: String, _ flags: CInt) -> CInt {
    let fd = unsafe open(path, flags | O_CLOEXEC)
    precondition(fd >= 0, "cannot open \(path): errno \(errno)")
    return fd
}

/// Reads the whole file at `path` with read(2), independently of any mapping.
func readFile(_ path: String) -> [UInt8] {
    let fd = openFile(path, O_RDONLY)
    defer { close(fd) }
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = unsafe chunk.withUnsafeMutableBytes { unsafe read(fd, $0.baseAddress, $0.count) }
        precondition(n >= 0, "read failed")
        if n == 0 { break }
        result += chunk[0..<n]
    }
    return result
}

/// Copies a span's bytes into an array.
func array(_ span: RawSpan) -> [UInt8] {
    unsafe span.withUnsafeBytes { unsafe Array($0) }
}

/// Whether a sanitizer runtime is loaded. Sanitizers catch fatal signals themselves (and exit
/// with their own status), and intercept mlock(2) as a no-op.
let runningUnderSanitizer: Bool = {
    let names: [String] = ["__tsan_init", "__asan_init", "__ubsan_handle_add_overflow"]
    return names.contains { name in unsafe dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) != nil }
}()

/// Whether ThreadSanitizer is loaded. TSan does not deliver a synchronous SIGBUS to a handler
/// that recovers with siglongjmp (the process dies; see llvm/llvm-project#215833 and
/// google/sanitizers#482), so tests that catch a SIGBUS are skipped under it and run under
/// AddressSanitizer and in ordinary builds instead.
let runningUnderThreadSanitizer: Bool = unsafe dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil

/// Dequeues up to `count` bytes with `read(into:)`.
func dequeue(_ queue: MmapByteQueue, upTo count: Int) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    var elements = out.mutableSpan
    var bytes = unsafe elements.mutableBytes
    let read = queue.read(into: &bytes)
    _ = consume bytes
    _ = consume elements
    return Array(out.prefix(read))
}
