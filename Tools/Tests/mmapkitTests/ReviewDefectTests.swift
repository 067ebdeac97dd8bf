import Foundation
import Glibc
import Testing

/// The defects a review found in the page-cache commands, one end-to-end test each (README,
/// "Defects of the review and their tests"). Trees are built here; nothing is timed.
@Suite(.serialized) struct ReviewDefectTests {
    // MARK: - lock

    /// Runs `lock` until its summary is out, then SIGTERM; returns status, stdout and stderr.
    private func lockUntilHolding(_ arguments: [String], environment: [String: String] = [:]) throws -> Run {
        let process = Process()
        process.executableURL = toolURL
        process.arguments = ["lock"] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        var text = ""
        while !text.contains("Locked:") {
            let data = out.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        if process.isRunning { process.terminate() }
        text += String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let status = process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
        return Run(status: status, stdoutBytes: Array(text.utf8), stderrBytes: Array(errors))
    }

    /// Defect 1. vm.max_map_count is global, so the test lowers the limit `lock` sees with its
    /// test hook (MMAPKIT_TEST_MAX_MAP_COUNT): 1400 leaves room for fewer than 400 mappings.
    @Test func lockPastTheMappingLimitSkipsTheRestHoldsWhatItLockedAndNeverCrashes() throws {
        let scratch = try Scratch()
        try FileManager.default.createDirectory(atPath: scratch.at("many"), withIntermediateDirectories: false)
        for index in 0..<400 { try scratch.write("many/\(index)", pages: 1) }
        let result = try lockUntilHolding([scratch.at("many")], environment: ["MMAPKIT_TEST_MAX_MAP_COUNT": "1400"])
        #expect(result.status == 1, "failures, not a crash: \(result.stderr.suffix(500))")
        #expect(!result.stderr.contains("Fatal error"))
        let locked = try #require(Int(result.summary("Locked").first ?? -1) as Int?)
        #expect(locked > 0 && locked < 400, "\(result.stdout)")
        #expect(result.stdout.contains("holding until SIGINT or SIGTERM"), "\(result.stdout)")
        let skipping = result.stderr.split(separator: "\n").filter { $0.contains("skipping, holding the rest") }
        #expect(skipping.count == 400 - locked, "\(result.stderr.prefix(500))")
        #expect(result.summary("Files") == [locked], "the total is printed: \(result.stdout)")
    }

    /// Defect 10 (and 14: an empty file is counted by lock as by the other commands).
    @Test func lockWithNothingToLockSaysSoExitsOneAndWritesNoPidFile() throws {
        let scratch = try Scratch()
        try scratch.write("empty", pages: 0)
        for daemon in [[String](), ["-d"]] {
            let pidFile = scratch.at("pid")
            let result = try mmapkit(["lock"] + daemon + ["-P", pidFile, scratch.at("empty")])
            #expect(result.status == 1, "\(daemon)")
            #expect(result.stdout.contains("Locked: 0 files; nothing could be locked"), "\(result.stdout)")
            #expect(result.summary("Files") == [1], "an empty file is counted: \(result.stdout)")
            #expect(!FileManager.default.fileExists(atPath: pidFile), "\(daemon)")
        }
    }

    /// Defect 11: the test hook truncates the file right after it is mapped.
    @Test func lockOfAFileThatShrinksMeanwhileSaysSo() throws {
        let scratch = try Scratch()
        let result = try mmapkit(["lock", scratch.file.path], environment: ["MMAPKIT_TEST_SHRINK_AFTER_MAP": "4096"])
        #expect(result.status == 1)
        #expect(
            result.stderr.contains("the file shrank from 16777216 to 4096 bytes while being locked"),
            "\(result.stderr)"
        )
        #expect(!result.stderr.contains("EFAULT"))
        #expect(result.stdout.contains("Locked: 0 files"), "\(result.stdout)")
    }

    /// Defect 12: a pid file that cannot be written fails the run before holding (or detaching).
    @Test func lockFailsAtOnceWhenThePidFileCannotBeWritten() throws {
        let scratch = try Scratch()
        for daemon in [[String](), ["-d"]] {
            let result = try mmapkit(["lock"] + daemon + ["-P", scratch.at("no/such/dir/pid"), scratch.file.path])
            #expect(result.status == 1, "\(daemon): \(result.stdout)")
            // A daemon's parent relays the child's stderr on its stdout.
            let output = result.stdout + result.stderr
            #expect(output.contains("cannot write the pid file: No such file or directory"), "\(output)")
            #expect(result.stdout.contains("released at once"), "\(result.stdout)")
        }
    }

    // MARK: - Walks

    /// Defect 2: a bind mount inside the tree (root only: mount(8)), of a directory and of a
    /// file with one link; vmtouch is the oracle for the directory.
    @Test func aBindMountInsideTheTreeIsCountedOnce() throws {
        guard getuid() == 0 else {
            print("skipped: bind mounts need root")
            return
        }
        let scratch = try Scratch()
        for name in ["src", "view"] {
            try FileManager.default.createDirectory(atPath: scratch.at(name), withIntermediateDirectories: false)
        }
        try scratch.write("src/f", pages: 2048)
        try scratch.write("single", pages: 3)
        try scratch.write("single-view", pages: 0)
        let mounted = try run(
            ["/usr/bin/mount", "--bind", scratch.at("src"), scratch.at("view")].map { Array($0.utf8) }
        )
        guard mounted.status == 0 else {
            print("skipped: mount --bind failed here: \(mounted.stderr)")
            return
        }
        defer { _ = try? run(["/usr/bin/umount", scratch.at("view")].map { Array($0.utf8) }) }
        let total = try mmapkit(["residency", "--json", scratch.path]).total()
        if haveVmtouch {
            let theirs = try vmtouchSummary([scratch.path])
            // vmtouch counts single-view (empty before the file mount) like us: compare first.
            #expect(Int(total["directories"] ?? -1) == theirs.directories && theirs.directories == 2)
            #expect(Int(total["files"] ?? -1) == theirs.files, "\(total) vs \(theirs)")
        }
        #expect(total["files"] == 4 && total["pages"] == 4096 + 2048 + 3, "data, src/f, single, single-view: \(total)")
        let fileMount = try run(
            ["/usr/bin/mount", "--bind", scratch.at("single"), scratch.at("single-view")].map { Array($0.utf8) }
        )
        guard fileMount.status == 0 else { return }
        defer { _ = try? run(["/usr/bin/umount", scratch.at("single-view")].map { Array($0.utf8) }) }
        let again = try mmapkit(["residency", "--json", scratch.path]).total()
        #expect(again["files"] == 3 && again["foldedNames"] == 2, "single-view is single, once: \(again)")
        #expect(again["pages"] == 6147, "data, src/f, single: \(again)")
    }

    /// Defect 8: with -f, links to a directory already walked (before and after it) are folded.
    @Test func withFollowSymlinksADirectoryIsWalkedOnce() throws {
        let scratch = try Scratch()
        try FileManager.default.createDirectory(atPath: scratch.at("d/e"), withIntermediateDirectories: true)
        try scratch.write("d/e/f", pages: 5)
        #expect(symlink("d", scratch.at("a")) == 0 && symlink("d", scratch.at("z")) == 0)
        #expect(symlink("d/e", scratch.at("y")) == 0)
        let total = try mmapkit(["residency", "--json", "-f", scratch.path]).total()
        #expect(total["directories"] == 3 && total["files"] == 2 && total["pages"] == 4096 + 5, "\(total)")
        if haveVmtouch {
            let theirs = try vmtouchSummary(["-f", scratch.path])
            #expect(Int(total["directories"] ?? -1) == theirs.directories, "\(total) vs \(theirs)")
            #expect(Int(total["files"] ?? -1) == theirs.files && Int(total["pages"] ?? -1) == theirs.pages)
        }
    }

    /// Defect 7: -i and -I apply to operands and batch lines, as in vmtouch.
    @Test func patternsApplyToOperandsAndBatchLines() throws {
        let scratch = try Scratch()
        try scratch.write("a.idx", pages: 2)
        try scratch.write("b.log", pages: 3)
        let names = [scratch.at("a.idx"), scratch.at("b.log"), scratch.file.path]
        let batch = try mmapkit(
            ["residency", "--json", "-b", "-", "-I", "*.idx"],
            input: Array(names.joined(separator: "\n").utf8)
        )
        #expect(try batch.total()["files"] == 1 && batch.total()["pages"] == 2, "\(batch.stdout)")
        let operands = try mmapkit(["residency", "--json", "-i", "*.log", "-i", "data"] + names)
        #expect(try operands.total()["files"] == 1 && operands.total()["pages"] == 2, "\(operands.stdout)")
        #expect(operands.status == 0 && operands.stderr.isEmpty, "filtered quietly: \(operands.stderr)")
        if haveVmtouch {
            let theirs = try vmtouchSummary(["-i", "*.log", "-i", "data"] + names)
            #expect(theirs.files == 1 && theirs.pages == 2, "\(theirs)")
        }
    }

    /// The judgment call: an entry removed between readdir and open is a skip, exit 0 (the
    /// test hook MMAPKIT_TEST_VANISH removes it right after the names are read).
    @Test func anEntryRemovedDuringTheWalkIsSkippedNotFailed() throws {
        let scratch = try Scratch()
        try scratch.write("rotated.log", pages: 1)
        let result = try mmapkit(
            ["residency", "--json", "--show-skips", scratch.path],
            environment: ["MMAPKIT_TEST_VANISH": "rotated.log"]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try result.total()["files"] == 1)
        #expect((try result.json()["skippedCounts"] as? [String: Int])?["vanished"] == 1)
        #expect(result.stderr.contains("rotated.log: skipped: removed during the walk"), "\(result.stderr)")
    }

    // MARK: - Hidden residency

    /// Defect 3 (root only: a root-owned file that nobody may not write is hidden from nobody).
    @Test func hiddenFilesAreLeftOutOfTheTotals() throws {
        guard getuid() == 0 else {
            print("skipped: needs root to drop to nobody against a root-owned file")
            return
        }
        let scratch = try Scratch()
        try scratch.write("open", pages: 8)
        chmod(scratch.at("open"), 0o666)  // writable by nobody: its residency is visible
        try scratch.cache("open", pages: 8)
        let json = try asNobody([toolURL.path, "residency", "--json", scratch.path])
        let total = try json.total()
        #expect(total["pages"] == 8 && total["residentPages"] == 8 && total["percent"] == 100, "\(total)")
        #expect(total["hiddenFiles"] == 1 && total["hiddenPages"] == 4096 && total["files"] == 2)
        let text = try asNobody([toolURL.path, "residency", scratch.path])
        #expect(text.summary("Resident Pages") == [8, 8], "\(text.stdout)")
        #expect(text.stdout.contains("Hidden Files: 1, 4096 pages, not counted above"), "\(text.stdout)")
    }

    /// Defect 4: touch and evict by a non-owner say the change is unknown, not 0.
    @Test func touchAndEvictByANonOwnerSayTheChangeIsUnknown() throws {
        guard getuid() == 0 else {
            print("skipped: needs root to drop to nobody against a root-owned file")
            return
        }
        let scratch = try Scratch()
        let evicted = try asNobody([toolURL.path, "evict", scratch.file.path])
        #expect(evicted.stdout.contains("Evicted Pages: unknown (the kernel hides"), "\(evicted.stdout)")
        let touched = try asNobody([toolURL.path, "touch", scratch.file.path])
        #expect(touched.stdout.contains("Touched Pages: unknown (the kernel hides"), "\(touched.stdout)")
        let json = try asNobody([toolURL.path, "evict", "--json", scratch.file.path]).json()
        let total = try #require(json["total"] as? [String: Any])
        #expect(total["evictedPagesNow"] is NSNull && total["unmeasuredFiles"] as? Int == 1, "\(total)")
    }

    // MARK: - Options and output

    /// Defects 5, 6 and 14 (decimal sizes), against vmtouch where it is installed.
    @Test func rangesFromTheStartAttachedValuesAndDecimalSizesAreAccepted() throws {
        let scratch = try Scratch()
        let file = scratch.file.path
        for (options, pages) in [
            (["-p", "-4M"], 1024), (["-p-4M"], 1024), (["-p4M"], 1024), (["--range", "-8K"], 2),
            (["-sp", "-4M"], 1024), (["-p", "1.5K"], 1), (["-p", "1.5M-"], 4096 - 384),
        ] {
            let result = try mmapkit(["residency", "--json"] + options + [file])
            #expect(result.status == 0, "\(options): \(result.stderr)")
            #expect(try result.total()["pages"] == Double(pages), "\(options)")
            if haveVmtouch, !options.contains("-sp"), !options.contains("--range") {
                #expect(try vmtouchSummary(options + [file]).pages == pages, "vmtouch \(options)")
            }
        }
        try scratch.write("small", pages: 300)
        for options in [["-m", "1.5M"], ["-m1.5M"]] {
            let total = try mmapkit(["residency", "--json"] + options + [scratch.path]).total()
            #expect(total["files"] == 1 && total["pages"] == 300, "\(options): \(total)")
        }
    }

    /// Defect 9: resident bytes are resident pages times the page size, as vmtouch says.
    @Test func residentBytesArePagesTimesThePageSize() throws {
        let scratch = try Scratch()
        try FileManager.default.removeItem(atPath: scratch.file.path)
        for index in 0..<3 { try scratch.write("\(index)", pages: 1, lastPageBytes: 1) }
        for index in 0..<3 { try scratch.cache("\(index)", pages: 1) }
        let result = try mmapkit(["residency", scratch.path])
        #expect(result.stdout.contains("Resident Pages: 3/3  12.0 KiB/12.0 KiB  100.00%"), "\(result.stdout)")
        #expect(try mmapkit(["residency", "--json", scratch.path]).total()["residentBytes"] == 3 * 4096)
        if haveVmtouch {
            let theirs = try run([vmtouchPath, scratch.path].map { Array($0.utf8) })
            #expect(theirs.stdout.contains("3/3  12K/12K"), "\(theirs.stdout)")
        }
    }

    /// Defect 13: a failed write to stdout is an error.
    @Test func aFailedWriteToStandardOutputExitsOne() throws {
        let scratch = try Scratch()
        let result = try run(
            ["/bin/sh", "-c", "exec \"$0\" residency \"$1\" > /dev/full", toolURL.path, scratch.path].map {
                Array($0.utf8)
            }
        )
        #expect(result.status == 1)
        #expect(result.stderr.contains("cannot write the output: No space left on device"), "\(result.stderr)")
    }

    /// Defect 14: C1 controls are escaped as fincore does; a long chain of links is not a loop.
    @Test func c1ControlsAreEscapedAndALongChainIsNotCalledALoop() throws {
        let scratch = try Scratch()
        let name: [UInt8] = [UInt8(ascii: "a"), 0xC2, 0x9B, UInt8(ascii: "b")]
        try scratch.writeBytes(name, pages: 1)
        let result = try mmapkit(["residency", scratch.path])
        #expect(result.stdout.contains("/a\\xc2\\x9bb"), "\(result.stdout)")
        #expect(!result.stdoutBytes.contains(0x9B))
        if haveFincore {
            let theirs = try run([Array(fincorePath.utf8), Array(scratch.path.utf8) + [UInt8(ascii: "/")] + name])
            #expect(theirs.stdout.contains("a\\xc2\\x9bb"), "fincore escapes it the same way: \(theirs.stdout)")
        }
        symlink("data", scratch.at("l0"))
        for index in 1...41 { symlink("l\(index - 1)", scratch.at("l\(index)")) }
        let chain = try mmapkit(["residency", scratch.at("l41")])
        #expect(chain.status == 1)
        #expect(chain.stderr.contains("l41: too many levels of symbolic links"), "\(chain.stderr)")
        #expect(!chain.stderr.contains("loop ("), "\(chain.stderr)")
        // l39 reaches data through 40 links, the most the kernel follows; l40 and l41 do not.
        #expect(try mmapkit(["residency", scratch.at("l39")]).status == 0)
        let walked = try mmapkit(["residency", "--json", "-f", scratch.path]).json()
        #expect((walked["skippedCounts"] as? [String: Int])?["symlinkChainTooLong"] == 2, "\(walked)")
    }
}
