import Glibc

// Helpers for the example's tools, tests and benchmark (not part of the log itself).

/// SplitMix64: a tiny seeded generator, so every random choice of a test can be replayed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    /// A generator that starts from `seed`.
    public init(seed: UInt64) { state = seed }
    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The payload the tests and the crash test write as record `seq`: its length and bytes depend
/// on `seq` alone, so whoever reads the log can check every record without a copy.
public enum Pattern {
    /// Mostly small records (up to 600 bytes), one in eight up to 12 KiB (several pages).
    public static func length(seq: UInt64) -> Int {
        var g = SplitMix64(seed: seq)
        let r = g.next()
        return r % 8 == 0 ? Int((r >> 8) % 12_289) : Int((r >> 8) % 601)
    }

    /// The payload of record `seq`, of `length` bytes or ``length(seq:)``.
    public static func payload(seq: UInt64, length: Int? = nil) -> [UInt8] {
        let n = length ?? Self.length(seq: seq)
        var g = SplitMix64(seed: seq ^ 0xA5A5_A5A5_A5A5_A5A5)
        var bytes = [UInt8](repeating: 0, count: n)
        var i = 0
        while i < n {
            var w = g.next()
            for _ in 0..<8 where i < n {
                bytes[i] = UInt8(truncatingIfNeeded: w)
                w >>= 8
                i += 1
            }
        }
        return bytes
    }
}

/// A child process started with `posix_spawn(3)`, its standard output optionally a pipe.
public struct ChildProcess: Sendable {
    /// The child's process id.
    public let pid: pid_t
    /// The read end of the child's standard output, or -1.
    public let output: CInt

    /// Starts `arguments[0]` (a path) with `arguments`; standard error is inherited.
    public init(_ arguments: [String], captureOutput: Bool) throws(SegmentLogError) {
        var fds: [CInt] = [-1, -1]
        if captureOutput {
            guard pipe(&fds) == 0 else { throw System.error("pipe") }
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if captureOutput { posix_spawn_file_actions_adddup2(&actions, fds[1], 1) }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let e = posix_spawn(&pid, arguments[0], &actions, nil, &argv, environ)
        if captureOutput { close(fds[1]) }
        guard e == 0 else {
            if captureOutput { close(fds[0]) }
            throw System.error("posix_spawn \(arguments[0])", e)
        }
        self.pid = pid
        self.output = fds[0]
    }

    /// Waits for the child and returns its raw wait status.
    public func wait() -> CInt {
        var status: CInt = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    /// Reads up to `count` bytes of output; 0 at end of file.
    public func read(into buffer: inout [UInt8], count: Int) -> Int {
        if buffer.count < count { buffer = [UInt8](repeating: 0, count: count) }
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(output, $0.baseAddress, count) }
            if n < 0 && errno == EINTR { continue }
            return max(n, 0)
        }
    }

    /// Everything the child writes until it closes its output.
    public func readAll() -> [UInt8] {
        var all: [UInt8] = []
        var buffer: [UInt8] = []
        while true {
            let n = read(into: &buffer, count: 65536)
            if n == 0 { return all }
            all += buffer[0..<n]
        }
    }

    /// The path of the running executable (`/proc/self/exe`).
    public static var currentExecutable: String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, Int(PATH_MAX))
        return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    }
}

/// Seconds on the monotonic clock.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
