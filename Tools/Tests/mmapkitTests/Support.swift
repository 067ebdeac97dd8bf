import Foundation
import Glibc
import Testing

/// The result of running a command: exit status and both streams (bytes kept as they are).
struct Run {
    let status: Int32
    let stdoutBytes: [UInt8]
    let stderrBytes: [UInt8]
    var stdout: String { String(decoding: stdoutBytes, as: UTF8.self) }
    var stderr: String { String(decoding: stderrBytes, as: UTF8.self) }

    /// The JSON object printed on stdout.
    func json() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(stdoutBytes)) as? [String: Any], "\(stdout)")
    }

    /// `total` of a `--json` report.
    func total() throws -> [String: Double] {
        try #require(try json()["total"] as? [String: Any]).compactMapValues { ($0 as? NSNumber)?.doubleValue }
    }

    /// A vmtouch-style summary line's numbers: "  Resident Pages: 11/25859  ..." → [11, 25859].
    func summary(_ label: String) -> [Int] {
        guard let line = stdout.split(separator: "\n").first(where: { $0.contains(label + ":") }) else { return [] }
        let value = line.split(separator: ":", maxSplits: 1)[1].split(separator: " ").first ?? ""
        return value.split(separator: "/").compactMap { Int($0) }
    }
}

/// Runs `argv` (bytes, so names that are not UTF-8 pass intact) with posix_spawn; stdin from
/// `input` when given. Output goes through temporary files, so neither stream can block.
func run(_ argv: [[UInt8]], input: [UInt8]? = nil, environment: [String: String] = [:]) throws -> Run {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("mmapkit-run-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let outPath = scratch.appendingPathComponent("out").path
    let errPath = scratch.appendingPathComponent("err").path
    let inPath = scratch.appendingPathComponent("in").path
    try Data(input ?? []).write(to: URL(fileURLWithPath: inPath))

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, inPath, O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)

    var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { bytes in
        let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
        for (index, byte) in bytes.enumerated() { pointer[index] = CChar(bitPattern: byte) }
        pointer[bytes.count] = 0
        return pointer
    }
    cArguments.append(nil)
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value }
    var cEnvironment: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") }
    cEnvironment.append(nil)
    defer {
        for pointer in cArguments { pointer?.deallocate() }
        for pointer in cEnvironment { free(pointer) }
    }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, cArguments[0]!, &actions, nil, cArguments, cEnvironment)
    try #require(spawned == 0, "posix_spawn \(String(decoding: argv[0], as: UTF8.self)): \(spawned)")
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return Run(
        status: exitStatus,
        stdoutBytes: Array(try Data(contentsOf: URL(fileURLWithPath: outPath))),
        stderrBytes: Array(try Data(contentsOf: URL(fileURLWithPath: errPath)))
    )
}

/// Runs the built `mmapkit` (next to this test bundle).
func mmapkit(_ arguments: [String], input: [UInt8]? = nil, environment: [String: String] = [:]) throws -> Run {
    try run([Array(toolURL.path.utf8)] + arguments.map { Array($0.utf8) }, input: input, environment: environment)
}

/// Runs `mmapkit` with byte arguments.
func mmapkit(bytes arguments: [[UInt8]]) throws -> Run {
    try run([Array(toolURL.path.utf8)] + arguments)
}

/// Runs a command as `nobody` (through setpriv when root; as is otherwise).
func asNobody(_ argv: [String]) throws -> Run {
    let prefix = getuid() == 0 ? ["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] : []
    return try run((prefix + argv).map { Array($0.utf8) })
}

let toolURL: URL = {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    return bundle.appendingPathComponent("mmapkit")
}()

let vmtouchPath = "/usr/bin/vmtouch"
let fincorePath = "/usr/bin/fincore"
var haveVmtouch: Bool { FileManager.default.isExecutableFile(atPath: vmtouchPath) }
var haveFincore: Bool { FileManager.default.isExecutableFile(atPath: fincorePath) }

/// A scratch directory (mode 0755, so `nobody` may enter it) removed at the end; `file` is
/// 16 MiB with a distinct byte per page.
final class Scratch {
    let directory: URL
    let file: URL
    var path: String { directory.path }

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mmapkit-tool-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        chmod(directory.path, 0o755)
        file = directory.appendingPathComponent("data")
        try write("data", pages: 4096)
    }

    /// Writes `pages` pages (the last one `lastPageBytes` long) at `name`, relative or bytes.
    func write(_ name: String, pages: Int, lastPageBytes: Int = 4096) throws {
        try writeBytes(Array(name.utf8), pages: pages, lastPageBytes: lastPageBytes)
    }

    func writeBytes(_ name: [UInt8], pages: Int, lastPageBytes: Int = 4096) throws {
        let size = pages == 0 ? 0 : (pages - 1) * 4096 + lastPageBytes
        var bytes = [UInt8](repeating: 0, count: size)
        for i in stride(from: 0, to: size, by: 4096) { bytes[i] = UInt8(truncatingIfNeeded: i >> 12) &+ 1 }
        let full = Array(directory.path.utf8) + [UInt8(ascii: "/")] + name
        let fd = (full + [0]).withUnsafeBufferPointer {
            $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
        }
        try #require(fd >= 0, "open \(String(decoding: full, as: UTF8.self)): \(errno)")
        defer { close(fd) }
        var offset = 0
        while offset < size {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, size - offset) }
            try #require(written > 0)
            offset += written
        }
        fsync(fd)
    }

    func at(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Drops `name` from the page cache, then reads `pages` pages of it back.
    func cache(_ name: String, pages: Int) throws {
        let fd = open(at(name), O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        var buffer = [UInt8](repeating: 0, count: 4096)
        for page in 0..<pages { _ = pread(fd, &buffer, 4096, off_t(page * 4096)) }
    }

    deinit {
        // Make everything removable again (tests make some directories unreadable).
        _ = try? run([Array("/bin/chmod".utf8), Array("-R".utf8), Array("u+rwx".utf8), Array(directory.path.utf8)])
        try? FileManager.default.removeItem(at: directory)
    }
}
