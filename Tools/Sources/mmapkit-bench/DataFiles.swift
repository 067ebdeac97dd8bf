import Foundation
import Glibc

/// The benchmark's data files, in a temporary directory removed at exit, also on SIGINT/SIGTERM.
final class DataFiles {
    let directory: String
    let data: String
    let data64k: String
    let target: String
    let dataSize: Int
    let targetSize: Int

    init(dataSize: Int, targetSize: Int) throws {
        var template = Array("/tmp/mmapkit-bench-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw BenchError("cannot create a temporary directory: \(String(cString: strerror(errno)))")
        }
        directory = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        data = directory + "/data-1g"
        data64k = directory + "/data-64k"
        target = directory + "/target-256m"
        self.dataSize = dataSize
        self.targetSize = targetSize
        CleanupOnSignal.register(paths: [data, data64k, target], directory: directory)
        try writePattern(to: data, count: dataSize)
        try writePattern(to: data64k, count: min(65536, dataSize))
        let fd = open(target, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0, ftruncate(fd, off_t(targetSize)) == 0 else { throw BenchError("cannot create \(target)") }
        close(fd)
    }

    func remove() {
        for path in [data, data64k, target] { unlink(path) }
        rmdir(directory)
        CleanupOnSignal.unregister()
    }

    /// Byte i of the data files: `UInt8(truncatingIfNeeded: (UInt64(i) &* 2654435761) >> 24)`.
    static func patternByte(_ i: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: (UInt64(i) &* 2_654_435_761) >> 24)
    }

    private func writePattern(to path: String, count: Int) throws {
        let fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BenchError("cannot create \(path)") }
        defer { close(fd) }
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        var offset = 0
        while offset < count {
            let length = min(chunk, count - offset)
            for j in 0..<length { buffer[j] = Self.patternByte(offset + j) }
            let written = buffer.withUnsafeBytes { write(fd, $0.baseAddress, length) }
            guard written == length else { throw BenchError("cannot write \(path)") }
            offset += length
        }
    }
}

/// Removes the data files when the process is interrupted. The handler uses only
/// async-signal-safe calls (unlink, rmdir, _exit) on C strings prepared in advance.
enum CleanupOnSignal {
    nonisolated(unsafe) private static var paths: [UnsafeMutablePointer<CChar>] = []
    nonisolated(unsafe) private static var directory: UnsafeMutablePointer<CChar>? = nil

    static func register(paths newPaths: [String], directory newDirectory: String) {
        paths = newPaths.map { strdup($0)! }
        directory = strdup(newDirectory)
        for signal in [SIGINT, SIGTERM] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signal in
                for path in CleanupOnSignal.paths { unlink(path) }
                if let directory = CleanupOnSignal.directory { rmdir(directory) }
                _exit(128 + signal)
            }
            sigaction(signal, &action, nil)
        }
    }

    static func unregister() {
        for signal in [SIGINT, SIGTERM] { Glibc.signal(signal, SIG_DFL) }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
