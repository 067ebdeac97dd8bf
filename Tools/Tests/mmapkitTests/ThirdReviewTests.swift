import Foundation
import Glibc
import Testing

/// The defects a third review found in the page-cache commands, one end-to-end test each
/// (README, "Defects of the third review"). Nothing is timed.
@Suite(.serialized) struct ThirdReviewTests {
    /// Waits (a bounded number of times) until process `pid` is gone; true if it is.
    private func waitGone(_ pid: pid_t) -> Bool {
        for _ in 0..<1000 {
            if kill(pid, 0) != 0 && errno == ESRCH { return true }
            usleep(10_000)
        }
        return false
    }

    private func pid(in path: String) -> pid_t? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap {
            pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// Runs `mmapkit arguments` through sh with stdout redirected to `stdout`.
    private func mmapkitWithStdout(_ arguments: [String], to stdout: String) throws -> Run {
        let quoted = arguments.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        return try run(
            ["/bin/sh", "-c", "exec \"$0\" " + quoted.joined(separator: " ") + " >" + stdout, toolURL.path].map {
                Array($0.utf8)
            }
        )
    }

    // MARK: - 1, 2: the pid file

    /// Defect 1: a pid file that cannot be written is removed only if `lock` created it; here
    /// the name is a link to /dev/full (and, as root, a character device like it).
    @Test func aPidFileThatCannotBeWrittenIsNeverRemovedUnlessLockCreatedIt() throws {
        let scratch = try Scratch()
        let link = scratch.at("full-link")
        #expect(symlink("/dev/full", link) == 0)
        var names = [link]
        if getuid() == 0 {
            let device = scratch.at("myfull")
            #expect(mknod(device, S_IFCHR | 0o666, dev_t((1 << 8) | 7)) == 0)
            names.append(device)
        }
        for name in names {
            let result = try mmapkit(["lock", "-q", "-P", name, scratch.file.path])
            #expect(result.status == 1, "\(name)")
            #expect(
                result.stderr.contains("cannot write the pid file: No space left on device (ENOSPC)"),
                "\(result.stderr)"
            )
            var st = stat()
            #expect(lstat(name, &st) == 0, "\(name) is still there")
        }
    }

    /// Defect 2: a daemon whose pid file another daemon has since written leaves it at exit.
    @Test func aDaemonLeavesAPidFileThatNowHoldsAnotherDaemonsPid() throws {
        let scratch = try Scratch()
        let pidFile = scratch.at("x.pid")
        let first = try mmapkit(["lock", "-d", "-q", "-P", pidFile, scratch.file.path])
        #expect(first.status == 0, "\(first.stderr)")
        let a = try #require(pid(in: pidFile))
        let second = try mmapkit(["lock", "-d", "-q", "-P", pidFile, scratch.file.path])
        #expect(second.status == 0, "\(second.stderr)")
        let b = try #require(pid(in: pidFile))
        defer {
            kill(a, SIGTERM)
            kill(b, SIGTERM)
        }
        #expect(a != b)
        kill(a, SIGTERM)
        #expect(waitGone(a))
        #expect(pid(in: pidFile) == b, "B's pid file is left alone")
        kill(b, SIGTERM)
        #expect(waitGone(b))
        #expect(!FileManager.default.fileExists(atPath: pidFile), "B removes its own pid file")
    }

    // MARK: - 5: signals while locking

    /// Defect 5: SIGTERM during the locking phase (the test hook sends it once the first of
    /// three files is locked) stops at once: nothing more is locked, no pid file, killed by it.
    @Test func sigtermWhileLockingStopsBeforeTheNextFile() throws {
        let scratch = try Scratch()
        try scratch.write("b", pages: 2)
        try scratch.write("c", pages: 2)
        let pidFile = scratch.at("pid")
        for daemon in [[String](), ["-d"]] {
            let result = try mmapkit(
                ["lock"] + daemon + ["-P", pidFile, scratch.file.path, scratch.at("b"), scratch.at("c")],
                environment: ["MMAPKIT_TEST_SIGNAL_AFTER_FILES": "1"]
            )
            let output = result.stdout + result.stderr
            #expect(result.status == (daemon.isEmpty ? 128 + SIGTERM : 1), "\(daemon): \(output)")
            #expect(output.contains("SIGTERM while locking: stopped after 1 file; nothing is held"), "\(output)")
            #expect(!output.contains("Locked:"), "\(output)")
            #expect(!FileManager.default.fileExists(atPath: pidFile))
        }
    }

    // MARK: - 3: huge sparse files

    /// Defect 3: sparse files of nearly 2^63 bytes (on tmpfs, which allows them) and totals
    /// past Int.max never trap: measured, or one clear failure per file.
    @Test func hugeSparseFilesAreMeasuredOrFailedNeverATrap() throws {
        let directory = "/dev/shm/mmapkit-huge-\(getpid())"
        guard mkdir(directory, 0o755) == 0 else {
            print("skipped: no /dev/shm here")
            return
        }
        defer { _ = try? FileManager.default.removeItem(atPath: directory) }
        let huge = directory + "/huge"
        let halves = [directory + "/h1", directory + "/h2"]
        for (path, size) in [(huge, Int.max), (halves[0], 1 << 62), (halves[1], 1 << 62)] {
            let fd = open(path, O_WRONLY | O_CREAT, 0o644)
            defer { close(fd) }
            guard fd >= 0, ftruncate(fd, off_t(size)) == 0 else {
                print("skipped: /dev/shm does not take a file of \(size) bytes")
                return
            }
        }
        let pages = (Int.max / 4096) + 1
        for command in ["residency", "evict"] {
            let result = try mmapkit([command, "--json", huge])
            #expect(result.status == 0, "\(command): \(result.stderr)")
            #expect(try result.total()["pages"] == Double(pages), "\(command)")
        }
        let near = try mmapkit(["residency", "--json", "-p", "\(Int.max - 4095)-", huge])
        #expect(near.status == 0, "\(near.stderr)")
        #expect(try near.total()["pages"] == 1)
        let both = try mmapkit(["residency", "--json", halves[0], halves[1]])
        #expect(both.status == 0, "\(both.stderr)")
        #expect(try both.total()["pages"] == Double(1 << 51))
        #expect(try both.total()["bytes"] == Double(Int.max), "the byte total saturates")
        #expect(try mmapkit(["residency", halves[0], halves[1]]).stdout.contains("8192.0 PiB"))
        for arguments in [
            ["residency", "--mincore", huge], ["residency", "-v", huge], ["touch", huge], ["lock", huge],
            ["touch", "-p", "\(Int.max - 4095)-", huge], ["lock", "-p", "\(Int.max - 4095)-", huge],
        ] {
            let result = try mmapkit(arguments)
            #expect(result.status == 1, "\(arguments): \(result.status) \(result.stderr)")
            #expect(result.stderr.hasPrefix("mmapkit: " + huge + ": "), "\(arguments): \(result.stderr)")
        }
    }

    // MARK: - 4: exit statuses

    /// Defect 4: help, version and a daemon's report that cannot be written exit 1; no command,
    /// or help for a command that does not exist, are usage errors (2).
    @Test func unwritableHelpVersionAndDaemonReportsFailAndMissingCommandsAreUsageErrors() throws {
        let scratch = try Scratch()
        for arguments in [["--help"], ["--version"], ["residency", "--help"], ["help", "lock"]] {
            let result = try mmapkitWithStdout(arguments, to: "/dev/full")
            #expect(result.status == 1, "\(arguments)")
            #expect(result.stderr.contains("cannot write the output: No space left on device (ENOSPC)"), "\(arguments)")
            let written = try mmapkit(arguments)
            #expect(written.status == 0 && !written.stdout.isEmpty && written.stderr.isEmpty, "\(arguments)")
        }
        let pidFile = scratch.at("pid")
        let daemon = try mmapkitWithStdout(["lock", "-d", "-P", pidFile, scratch.file.path], to: "/dev/full")
        #expect(daemon.status == 1)
        #expect(
            daemon.stderr.contains("cannot write the output: No space left on device (ENOSPC); the daemon was stopped")
        )
        if let pid = pid(in: pidFile) {
            #expect(waitGone(pid), "the daemon stops")
            kill(pid, SIGTERM)
        }
        let none = try mmapkit([])
        #expect(none.status == 2 && none.stdout.isEmpty && none.stderr.contains("USAGE:"), "\(none.stderr)")
        let unknown = try mmapkit(["help", "nope"])
        #expect(unknown.status == 2 && unknown.stdout.isEmpty, "\(unknown.stdout)")
        #expect(unknown.stderr.hasPrefix("Error: unknown command 'nope'\n"), "\(unknown.stderr)")
    }

    // MARK: - 6: evict -p

    /// Drops `path` from the page cache and reads it back a page at a time without readahead,
    /// so that every page is its own folio: the kernel does not drop a large folio that only
    /// partly lies in the range, which would make the counts depend on readahead.
    private func cachePageByPage(_ path: String, pages: Int) throws {
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM)
        var buffer = [UInt8](repeating: 0, count: 4096)
        for page in 0..<pages { _ = pread(fd, &buffer, 4096, off_t(page * 4096)) }
    }

    /// Defect 6: `evict -p` rounds the range outward to whole pages, as residency and touch
    /// count it (a 1,000,000-byte file has 245 pages). vmtouch is no oracle here: it passes the
    /// range as given, and the kernel drops only the whole pages inside it (`-p 0-1`: none).
    @Test func evictOfARangeEvictsEveryPageTheRangeTouches() throws {
        let scratch = try Scratch()
        try scratch.write("m", pages: 245, lastPageBytes: 1_000_000 - 244 * 4096)
        for (range, left) in [("999999-1000000", 244), ("998000-", 243), ("4095-8193", 242), ("0-1", 244)] {
            try cachePageByPage(scratch.at("m"), pages: 245)
            let evicted = try mmapkit(["evict", "--json", "-p", range, scratch.at("m")])
            #expect(evicted.status == 0, "\(evicted.stderr)")
            #expect(
                try evicted.total()["pages"]
                    == Double(
                        try mmapkit(["residency", "--json", "-p", range, scratch.at("m")]).total()["pages"] ?? -1
                    )
            )
            let after = try mmapkit(["residency", "--json", scratch.at("m")]).total()
            #expect(after["residentPages"] == Double(left), "\(range)")
        }
    }

    // MARK: - 7, 8: option values

    /// Defect 7: `--name=` is an empty value (a usage error where empty is invalid), never the
    /// next argument; both parsers.
    @Test func anEmptyEqualsValueIsEmptyNotTheNextArgument() throws {
        let scratch = try Scratch()
        for parser in ["fast", "argument-parser"] {
            let environment = parser == "fast" ? [:] : ["MMAPKIT_TEST_PARSER": parser]
            let range = try mmapkit(["residency", "--range=", "4K", scratch.file.path], environment: environment)
            #expect(range.status == 2 && range.stderr.hasPrefix("Error: --range '' is not a range"), "\(range.stderr)")
            let exclude = try mmapkit(
                ["residency", "--exclude=", scratch.file.path, scratch.path],
                environment: environment
            )
            #expect(
                exclude.status == 2 && exclude.stderr.contains("empty --exclude or --include pattern"),
                "\(exclude.stderr)"
            )
            let pidFile = try mmapkit(["lock", "--pid-file=", scratch.file.path], environment: environment)
            #expect(pidFile.status == 2 && pidFile.stderr.contains("--pid-file needs a file name"), "\(pidFile.stderr)")
            let batch = try mmapkit(["residency", "--batch=", scratch.file.path], environment: environment)
            #expect(batch.status == 2 && batch.stderr.contains("--batch needs a file name"), "\(batch.stderr)")
        }
    }

    /// Defect 8: the argument after an option that takes a value is the value even if it starts
    /// with '-', as getopt (and vmtouch) read it: -i, -I, --exclude, -b, -P.
    @Test func aValueThatStartsWithADashIsTheOptionsValue() throws {
        let scratch = try Scratch()
        try scratch.write("-dash", pages: 2)
        try scratch.write("-list", pages: 0)
        try Data((scratch.file.path + "\n").utf8).write(to: URL(fileURLWithPath: scratch.at("-list")))
        // data, -dash, -list.
        for (arguments, expected) in [
            (["-i", "-*"], 1.0), (["--exclude", "-dash"], 2), (["-I", "-*"], 2), (["--include", "-d*"], 1),
        ] {
            let result = try mmapkit(["residency", "--json"] + arguments + [scratch.path])
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            #expect(try result.total()["files"] == expected, "\(arguments): \(result.stdout)")
        }
        // Relative names that start with '-', from the scratch directory.
        let batch = try run(
            ["/bin/sh", "-c", "cd \"$1\" && exec \"$0\" residency --json -b -list", toolURL.path, scratch.path].map {
                Array($0.utf8)
            }
        )
        #expect(batch.status == 0, "\(batch.stderr)")
        #expect(try batch.total()["pages"] == 4096)
        let locked = try run(
            ["/bin/sh", "-c", "cd \"$1\" && exec \"$0\" lock -d -q -P -pid data", toolURL.path, scratch.path].map {
                Array($0.utf8)
            }
        )
        #expect(locked.status == 0, "\(locked.stderr)")
        let daemon = try #require(pid(in: scratch.at("-pid")), "the pid file is -pid")
        kill(daemon, SIGTERM)
        #expect(waitGone(daemon))
    }

    // MARK: - 9: the -v bar

    /// Defect 9: a file of fewer than 60 pages gets one bar cell per page (no blank cells), in
    /// text and JSON; a larger one keeps 60 cells.
    @Test func theBarHasOneCellPerPageForSmallFiles() throws {
        let scratch = try Scratch()
        try scratch.write("one", pages: 1)
        try scratch.write("five", pages: 5)
        try scratch.cache("one", pages: 1)
        try scratch.cachePageByPageForBar("five", pages: [0, 2])
        let text = try mmapkit(["residency", "-v", scratch.at("one"), scratch.at("five")])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("\n  [#]\n"), "\(text.stdout)")
        #expect(text.stdout.contains("\n  [#.#..]\n"), "\(text.stdout)")
        let json = try mmapkit(["residency", "-v", "--json", scratch.at("five"), scratch.file.path]).json()
        let bars = try #require(json["files"] as? [[String: Any]]).compactMap { $0["bar"] as? String }
        #expect(bars.first == "#.#.." && bars.last?.count == 60, "\(bars)")
    }
}

extension Scratch {
    /// Drops `name` from the page cache, then reads exactly these pages (no readahead).
    func cachePageByPageForBar(_ name: String, pages: [Int]) throws {
        let fd = open(at(name), O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM)
        var buffer = [UInt8](repeating: 0, count: 4096)
        for page in pages { _ = pread(fd, &buffer, 4096, off_t(page * 4096)) }
    }
}
