import Foundation
import Testing

/// Runs the built `mmapkit` (next to this test bundle) and returns its status and output.
func mmapkit(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = toolURL
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

let toolURL: URL = {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    return bundle.appendingPathComponent("mmapkit")
}()

/// A scratch directory with a 16 MiB file of random bytes.
final class Scratch {
    let directory: URL
    let file: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mmapkit-tool-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        file = directory.appendingPathComponent("data")
        var bytes = [UInt8](repeating: 0, count: 16 << 20)
        for i in stride(from: 0, to: bytes.count, by: 4096) { bytes[i] = UInt8(truncatingIfNeeded: i >> 12) }
        try Data(bytes).write(to: file)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }
}

/// The `total` object of a `residency --json` report.
func totals(_ json: String) throws -> [String: Double] {
    let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
    return (object["total"] as! [String: Any]).mapValues { ($0 as! NSNumber).doubleValue }
}

@Suite(.serialized) struct PageCacheCommandTests {
    @Test func touchMakesAFileResidentAndEvictDropsIt() throws {
        let scratch = try Scratch()
        let touched = try mmapkit(["touch", scratch.file.path])
        #expect(touched.status == 0, "\(touched.stderr)")
        #expect(touched.stdout.contains("touched 1 files: 4096 pages"))
        let after = try totals(mmapkit(["residency", "--json", scratch.file.path]).stdout)
        #expect(after["percent"] == 100 && after["pages"] == 4096)

        let evicted = try mmapkit(["evict", scratch.file.path])
        #expect(evicted.status == 0, "\(evicted.stderr)")
        let dropped = try totals(mmapkit(["residency", "--json", scratch.file.path]).stdout)
        // This kernel honours POSIX_FADV_DONTNEED for clean, unmapped pages.
        #expect(dropped["residentPages"]! < 4096)
        print("touch -> 100% resident; evict -> \(Int(dropped["residentPages"]!)) of 4096 pages resident")
    }

    @Test func residencyAgreesWithFincore() throws {
        let scratch = try Scratch()
        _ = try mmapkit(["touch", scratch.file.path])
        _ = try mmapkit(["evict", scratch.file.path])
        // Make half of it resident again.
        let handle = try FileHandle(forReadingFrom: scratch.file)
        _ = try handle.read(upToCount: 8 << 20)
        try handle.close()
        let ours = try totals(mmapkit(["residency", "--json", scratch.file.path]).stdout)
        let fincore = Process()
        fincore.executableURL = URL(fileURLWithPath: "/usr/bin/fincore")
        fincore.arguments = ["--raw", "--noheadings", "--output", "PAGES", scratch.file.path]
        let pipe = Pipe()
        fincore.standardOutput = pipe
        guard (try? fincore.run()) != nil else {
            print("fincore is not installed; skipping the comparison")
            return
        }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        fincore.waitUntilExit()
        let theirs = Double(output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(theirs == ours["residentPages"], "fincore \(output), mmapkit \(ours)")
    }

    @Test func jsonParsesForEveryCommand() throws {
        let scratch = try Scratch()
        for command in ["residency", "touch", "evict"] {
            let result = try mmapkit([command, "--json", scratch.file.path])
            #expect(result.status == 0)
            let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            #expect(object?["files"] != nil, "\(command): \(result.stdout)")
        }
    }

    @Test func badPathsGetOneClearLineAndExitStatusOne() throws {
        let scratch = try Scratch()
        let fifo = scratch.directory.appendingPathComponent("fifo").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let empty = scratch.directory.appendingPathComponent("empty").path
        FileManager.default.createFile(atPath: empty, contents: Data())
        let cases: [(path: String, message: String)] = [
            ("/no/such/file", "No such file or directory"),
            (scratch.directory.path, "is a directory (use -r to recurse)"),
            (fifo, "is a FIFO"),
            ("/dev/null", "is a character device"),
        ]
        for command in ["residency", "touch", "evict"] {
            let result = try mmapkit([command, scratch.file.path] + cases.map(\.path) + [empty, "/proc/self/status"])
            #expect(result.status == 1, "\(command)")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == cases.count + 2, "\(command): \(result.stderr)")
            for item in cases {
                #expect(lines.contains { $0.contains(item.path) && $0.contains(item.message) }, "\(command): \(item.path)")
            }
            #expect(lines.contains { $0.contains(empty) && $0.contains("skipped: empty file") })
            #expect(lines.contains { $0.contains("/proc/self/status") && $0.contains("skipped") })
        }
        // Skips alone are not failures; recursion handles the directory.
        #expect(try mmapkit(["residency", empty, "/proc/self/status"]).status == 0)
        let recursive = try mmapkit(["residency", "-r", scratch.directory.path])
        #expect(recursive.stdout.contains(scratch.file.path))
    }

    @Test func usageErrorsExitWithStatusTwo() throws {
        #expect(try mmapkit(["residency"]).status == 2)
        #expect(try mmapkit(["residency", "--no-such-flag", "/etc/hostname"]).status == 2)
        #expect(try mmapkit(["bench", "--workloads", "nonsense"]).status == 2)
    }

    @Test func aLargeSparseFileIsMeasuredWithoutReadingIt() throws {
        let scratch = try Scratch()
        let sparse = scratch.directory.appendingPathComponent("sparse").path
        #expect(truncate(sparse, 0) == -1 || true)
        FileManager.default.createFile(atPath: sparse, contents: Data())
        #expect(truncate(sparse, 6 << 30) == 0)
        let result = try mmapkit(["residency", "--json", sparse])
        #expect(result.status == 0)
        let total = try totals(result.stdout)
        #expect(total["pages"] == Double((6 << 30) / 4096) && total["residentPages"] == 0)
    }

    @Test func lockHoldsUntilSIGTERMThenUnlocksAndExitsZero() throws {
        let scratch = try Scratch()
        let process = Process()
        process.executableURL = toolURL
        process.arguments = ["lock", scratch.file.path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        // Wait for the "locked" line, then look at the process's locked memory.
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        #expect(line.contains("locked 1 files"), "\(line)")
        let status = try String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
        let locked = status.split(separator: "\n").first { $0.hasPrefix("VmLck:") } ?? ""
        #expect(locked.contains("16384 kB"), "\(locked)")
        process.terminate()  // SIGTERM
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
    }

    @Test func lockBeyondTheLimitNamesRLIMIT_MEMLOCK() throws {
        let scratch = try Scratch()
        // `prlimit` lowers the limit for the child only. Root has CAP_IPC_LOCK, which ignores the
        // limit, so as root the child also drops to `nobody` with `setpriv`.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: scratch.directory.path)
        var command = ["/usr/bin/prlimit", "--memlock=65536:65536", toolURL.path, "lock", scratch.file.path]
        if getuid() == 0 { command = ["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + command }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        let err = Pipe()
        process.standardError = err
        process.standardOutput = Pipe()
        try process.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        #expect(message.contains("RLIMIT_MEMLOCK is 65536 bytes"), "\(message)")
    }
}
