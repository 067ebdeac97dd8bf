import Foundation
import Glibc
import Testing

@Suite(.serialized) struct PageCacheCommandTests {
    @Test func touchMakesAFileResidentAndEvictDropsIt() throws {
        let scratch = try Scratch()
        let touched = try mmapkit(["touch", scratch.file.path])
        #expect(touched.status == 0, "\(touched.stderr)")
        #expect(touched.summary("Resident Pages") == [4096, 4096], "\(touched.stdout)")
        let after = try mmapkit(["residency", "--json", scratch.file.path]).total()
        #expect(after["percent"] == 100 && after["pages"] == 4096)

        let evicted = try mmapkit(["evict", scratch.file.path])
        #expect(evicted.status == 0, "\(evicted.stderr)")
        #expect(evicted.summary("Evicted Pages") == [4096], "\(evicted.stdout)")
        let dropped = try mmapkit(["residency", "--json", scratch.file.path]).total()
        // This kernel honours POSIX_FADV_DONTNEED for clean, unmapped pages.
        #expect(dropped["residentPages"] == 0)
    }

    @Test func touchRateCountsOnlyPagesThatWereNotResident() throws {
        let scratch = try Scratch()
        _ = try mmapkit(["evict", scratch.file.path])
        let first = try mmapkit(["touch", "--json", scratch.file.path]).total()
        #expect(first["newlyResidentPages"] == 4096)
        let second = try mmapkit(["touch", "--json", scratch.file.path]).total()
        #expect(second["newlyResidentPages"] == 0, "already resident: nothing new to count in the rate")
        #expect(second["newlyResidentBytesPerSecond"] == 0)
    }

    @Test func touchOfAFileThatShrinksMeanwhileSaysSo() throws {
        let scratch = try Scratch()
        _ = try mmapkit(["evict", scratch.file.path])
        // The test hook truncates the file to one page right after it is mapped.
        let result = try mmapkit(["touch", scratch.file.path], environment: ["MMAPKIT_TEST_SHRINK_AFTER_MAP": "4096"])
        #expect(result.status == 1)
        #expect(
            result.stderr.contains("the file shrank from 16777216 to 4096 bytes while being touched"),
            "\(result.stderr)"
        )
        #expect(!result.stderr.contains("EFAULT"))
        #expect(result.stdout.contains("Files:"), "the summary is printed")
    }

    @Test func jsonParsesForEveryCommand() throws {
        let scratch = try Scratch()
        for command in ["residency", "touch", "evict"] {
            let result = try mmapkit([command, "--json", scratch.file.path, "/no/such/file"])
            #expect(result.status == 1)
            let object = try result.json()
            #expect((object["files"] as? [Any])?.count == 1, "\(command): \(result.stdout)")
            #expect((object["errors"] as? [Any])?.count == 1, "\(command): \(result.stdout)")
        }
    }

    @Test func badOperandsGetOneClearLineAndExitStatusOne() throws {
        let scratch = try Scratch()
        let fifo = scratch.at("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let cases: [(path: String, message: String)] = [
            ("/no/such/file", "No such file or directory (ENOENT)"),
            (fifo, "is a FIFO"),
            ("/dev/null", "is a character device"),
        ]
        for command in ["residency", "touch", "evict"] {
            let result = try mmapkit([command, scratch.file.path] + cases.map(\.path))
            #expect(result.status == 1, "\(command)")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == cases.count, "\(command): \(result.stderr)")
            for item in cases {
                #expect(lines.contains { $0.contains(item.path) && $0.contains(item.message) }, "\(command): \(item)")
            }
            #expect(result.stdout.contains("Files: 1"), "the total is printed: \(result.stdout)")
        }
    }

    @Test func usageErrorsExitWithStatusTwo() throws {
        #expect(try mmapkit(["residency"]).status == 2)
        #expect(try mmapkit(["residency", "--no-such-flag", "/etc/hostname"]).status == 2)
        #expect(try mmapkit(["residency", "--range", "9-1", "/etc/hostname"]).status == 2)
        #expect(try mmapkit(["bench", "--workloads", "nonsense"]).status == 2)
    }

    @Test func versionIsPrinted() throws {
        let result = try mmapkit(["--version"])
        #expect(result.status == 0 && result.stdout.hasPrefix("mmapkit "))
    }

    @Test func aLargeSparseFileIsMeasuredWithoutReadingIt() throws {
        let scratch = try Scratch()
        let sparse = scratch.at("sparse")
        FileManager.default.createFile(atPath: sparse, contents: Data())
        #expect(truncate(sparse, 6 << 30) == 0)
        let result = try mmapkit(["residency", "--json", sparse])
        #expect(result.status == 0)
        let total = try result.total()
        #expect(total["pages"] == Double((6 << 30) / 4096) && total["residentPages"] == 0)
    }

    @Test func lockHoldsThroughSIGHUPUntilSIGTERMThenExitsZero() throws {
        let scratch = try Scratch()
        let process = Process()
        process.executableURL = toolURL
        process.arguments = ["lock", scratch.file.path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        // Wait for the summary (it ends with the "Locked:" line), then look at locked memory.
        var text = ""
        while !text.contains("Locked:") {
            let data = out.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        #expect(text.contains("Locked: 1 files"), "\(text)")
        #expect(try lockedKilobytes(process.processIdentifier) == 16384)
        kill(process.processIdentifier, SIGHUP)  // a closed terminal: the locks stay
        #expect(try lockedKilobytes(process.processIdentifier) == 16384)
        process.terminate()  // SIGTERM
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
    }

    @Test func lockAsADaemonWritesItsPidAndHoldsTheLocks() throws {
        let scratch = try Scratch()
        let pidFile = scratch.at("pid")
        let result = try mmapkit(["lock", "--daemon", "--pid-file", pidFile, scratch.file.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("Locked: 1 files"), "\(result.stdout)")
        let pid = try #require(
            Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        )
        #expect(try lockedKilobytes(pid) == 16384)
        kill(pid, SIGTERM)
        // Wait (without a time threshold) for the daemon to unlock and remove its pid file.
        while kill(pid, 0) == 0 { usleep(10_000) }
        #expect(!FileManager.default.fileExists(atPath: pidFile))
    }

    @Test func lockBeyondTheLimitNamesRLIMIT_MEMLOCK() throws {
        let scratch = try Scratch()
        // `prlimit` lowers the limit for the child only. Root has CAP_IPC_LOCK, which ignores the
        // limit, so as root the child also drops to `nobody` with `setpriv`.
        let result = try asNobody([
            "/usr/bin/prlimit", "--memlock=65536:65536", toolURL.path, "lock", scratch.file.path,
        ])
        #expect(result.status == 1)
        #expect(result.stderr.contains("RLIMIT_MEMLOCK is 65536 bytes"), "\(result.stderr)")
    }
}

/// VmLck of a process, in KiB.
func lockedKilobytes(_ pid: Int32) throws -> Int {
    let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmLck:") } ?? ""
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
}

@Suite struct StreamingTests {
    /// A batch on stdin is measured path by path: the first file's line arrives while the
    /// second path has not even been written. (The poll timeout only turns a hang into a
    /// failure; nothing is timed.)
    @Test func batchPathsAreMeasuredAndPrintedAsTheyArrive() throws {
        let scratch = try Scratch()
        try scratch.write("second", pages: 2)
        let process = Process()
        process.executableURL = toolURL
        process.arguments = ["residency", "-b", "-"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data((scratch.file.path + "\n").utf8))
        var text = ""
        let fd = output.fileHandleForReading.fileDescriptor
        while !text.contains(scratch.file.path) {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            try #require(poll(&entry, 1, 20_000) == 1, "no line for the first path before the second was sent")
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = read(fd, &buffer, buffer.count)
            try #require(count > 0)
            text += String(decoding: buffer[0..<count], as: UTF8.self)
        }
        #expect(!text.contains("second"))
        input.fileHandleForWriting.write(Data((scratch.at("second") + "\n").utf8))
        try input.fileHandleForWriting.close()
        let rest = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(rest.contains("second") && rest.contains("Files: 2"), "\(rest)")
    }
}
