import Glibc
import MmapKit

/// The page-cache commands' work, whichever parser read the command line: ``FastCommandLine``
/// in `mmapkit`, ArgumentParser in `mmapkit-cli`. Each returns the exit status.
package enum PageCacheCommands {
    // MARK: - residency

    /// Runs the command; returns the exit status.
    package static func residency(_ options: PageCacheSettings, verbose: Bool) throws -> Int32 {
        let session = Session(kind: .residency, options: options, barWidth: verbose ? 60 : nil)
        session.action = { session, fd, path, st in
            guard let counts = session.measure(fd: fd, path: path, stat: st, barWidth: session.barWidth) else {
                return nil
            }
            return FileRecord(path: path, size: Int(st.st_size), counts: counts)
        }
        try session.run()
        return session.finish()
    }

    // MARK: - touch

    /// Test hook: truncate each file to this many bytes right after mapping it, to exercise the
    /// "file shrank" path deterministically. Not an option; read from the environment.
    static let shrinkForTesting: Int? = getenv("MMAPKIT_TEST_SHRINK_AFTER_MAP").flatMap { Int(String(cString: $0)) }

    /// The test hook's truncation (``shrinkForTesting``), right after a file is mapped.
    static func shrinkIfTesting(_ path: [UInt8]) {
        guard let size = shrinkForTesting else { return }
        let writable = BytePath(path).withCString { open($0, O_WRONLY | O_CLOEXEC) }
        _ = ftruncate(writable, off_t(size))
        close(writable)
    }

    /// For EFAULT or EIO while populating a mapping: "the file shrank from X to Y bytes while
    /// being <verb>; <then>" when it did (the pages past the new end no longer exist), else nil.
    static func shrinkMessage(fd: CInt, stat st: stat, while verb: String, then: String) -> String? {
        var now = stat()
        guard fstat(fd, &now) == 0 && Int(now.st_size) < Int(st.st_size) else { return nil }
        return "the file shrank from \(st.st_size) to \(now.st_size) bytes while being \(verb); \(then)"
    }

    /// Runs the command; returns the exit status.
    package static func touch(_ options: PageCacheSettings) throws -> Int32 {
        let session = Session(kind: .touch, options: options)
        let chunk = 64 << 20
        session.action = { session, fd, path, st in
            guard let before = session.measure(fd: fd, path: path, stat: st) else { return nil }
            let range = session.range.clipped(to: Int(st.st_size))
            guard !range.isEmpty else { return FileRecord(path: path, size: Int(st.st_size), counts: before) }
            let start = range.lowerBound / session.meter.pageSize * session.meter.pageSize
            do throws(MmapError) {
                let map = try Mmap(fileDescriptor: fd, offset: Int64(start), count: range.upperBound - start)
                shrinkIfTesting(path)
                var offset = 0
                while offset < map.count {
                    let end = min(map.count, offset + chunk)
                    do throws(MmapError) {
                        try map.populate(range: offset..<end)
                    } catch  where error.errno == EFAULT || error.errno == EIO {
                        if let message = shrinkMessage(
                            fd: fd,
                            stat: st,
                            while: "touched",
                            then: "the pages up to the new end were read"
                        ) {
                            session.fail(path: path, message: message)
                            return nil
                        }
                        throw error
                    }
                    offset = end
                }
            } catch {
                if error.errno == ENODEV {
                    session.skipWithoutPageCache(path: path)
                } else {
                    session.fail(path: path, message: error.description)
                }
                return nil
            }
            guard let after = session.measure(fd: fd, path: path, stat: st) else { return nil }
            return FileRecord(path: path, size: Int(st.st_size), counts: after, before: before)
        }
        let started = monotonicSeconds()
        try session.run()
        let seconds = monotonicSeconds() - started
        let newly = session.newlyResidentPages * session.meter.pageSize
        let rate = seconds > 0 ? Double(newly) / seconds : 0
        let unknown = session.measuredFiles == 0 && session.unmeasuredFiles > 0
        let line =
            unknown
            ? "   Touched Pages: unknown (\(hiddenNote(session.unmeasuredFiles, all: true)))"
            : "   Touched Pages: \(session.newlyResidentPages) newly read (\(humanBytes(newly)) at "
                + "\(humanBytes(Int(rate)))/s); the rest were resident already"
                + (session.unmeasuredFiles > 0 ? "; \(hiddenNote(session.unmeasuredFiles, all: false))" : "")
        return session.finish(
            extraLines: [line],
            extraJSON: { total in
                if unknown {
                    total.addRaw("newlyResidentPages", "null")
                    total.addRaw("newlyResidentBytesPerSecond", "null")
                } else {
                    total.add("newlyResidentPages", session.newlyResidentPages)
                    total.add("newlyResidentBytesPerSecond", rate)
                }
                total.add("unmeasuredFiles", session.unmeasuredFiles)
            }
        )
    }

    // MARK: - evict

    /// Runs the command; returns the exit status.
    package static func evict(_ options: PageCacheSettings) throws -> Int32 {
        let session = Session(kind: .evict, options: options)
        session.action = { session, fd, path, st in
            guard let before = session.measure(fd: fd, path: path, stat: st) else { return nil }
            let range = session.range.clipped(to: Int(st.st_size))
            // Dirty pages are not dropped: write them back first (when cachestat cannot tell, always).
            if (before.dirty ?? 1) > 0 || (before.writeback ?? 0) > 0 {
                if fdatasync(fd) != 0 {
                    session.fail(path: path, message: "fdatasync: \(errnoText(errno))")
                }
            }
            // The kernel drops only whole pages inside the range it is given: round outward, as
            // residency and touch count pages (and vmtouch evicts). Length 0 is to the end.
            let page = session.meter.pageSize
            let start = range.lowerBound / page * page
            let endPage = range.upperBound / page + (range.upperBound % page == 0 ? 0 : 1)
            let (end, overflow) = endPage.multipliedReportingOverflow(by: page)
            let length = overflow || range.upperBound >= Int(st.st_size) ? 0 : end - start
            let advised =
                range.isEmpty ? 0 : posix_fadvise(fd, off_t(start), off_t(length), POSIX_FADV_DONTNEED)
            if advised != 0 {
                session.fail(path: path, message: "posix_fadvise: \(errnoText(advised))")
                return nil
            }
            guard let after = session.measure(fd: fd, path: path, stat: st) else { return nil }
            return FileRecord(path: path, size: Int(st.st_size), counts: after, before: before)
        }
        try session.run()
        let unknown = session.measuredFiles == 0 && session.unmeasuredFiles > 0
        let line =
            unknown
            ? "   Evicted Pages: unknown (\(hiddenNote(session.unmeasuredFiles, all: true)))"
            : "   Evicted Pages: \(session.evictedPages)"
                + (session.unmeasuredFiles > 0 ? " (\(hiddenNote(session.unmeasuredFiles, all: false)))" : "")
        return session.finish(
            extraLines: [line],
            extraJSON: { total in
                if unknown {
                    total.addRaw("evictedPagesNow", "null")
                } else {
                    total.add("evictedPagesNow", session.evictedPages)
                }
                total.add("unmeasuredFiles", session.unmeasuredFiles)
            }
        )
    }

    /// Why `touch` or `evict` cannot say what changed in some files (or in all of them).
    static func hiddenNote(_ count: Int, all: Bool) -> String {
        let files = count == 1 ? "1 file" : "\(count) files"
        return all
            ? "the kernel hides the residency of \(count == 1 ? "the" : "all") \(files) from you: neither writable nor owned"
            : "not counted: \(files) whose residency the kernel hides from you"
    }

    // MARK: - lock

    /// Runs the command (holding the locks until a signal); returns the exit status.
    package static func lock(_ options: PageCacheSettings, daemon: Bool, pidFile: String?) throws -> Int32 {
        // Block the signals first, so that they wait for sigwait below instead of killing us.
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        signal(SIGPIPE, SIG_IGN)

        // The daemon changes to /: a relative pid file is named from here.
        let pidPath = pidFile.map { BytePath(argument: $0) }.map { path in
            guard path.bytes.first != UInt8(ascii: "/") else { return path }
            var directory = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            guard getcwd(&directory, directory.count) != nil else { return path }
            let name = directory.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            return BytePath(name + [UInt8(ascii: "/")] + path.bytes)
        }
        if daemon { try Daemon.detachAfterSetup() }

        let held = HeldMappings()
        var budget = MappingBudget()
        let session = Session(kind: .lock, options: options)
        session.action = { session, fd, path, st in
            stopIfSignalled(held: held)
            let range = session.range.clipped(to: Int(st.st_size))
            // An empty file (or range) is counted, as the other commands count it; nothing to lock.
            guard !range.isEmpty else {
                return session.measure(fd: fd, path: path, stat: st).map {
                    FileRecord(path: path, size: Int(st.st_size), counts: $0)
                }
            }
            if let message = budget.refusal(held: held.count) {
                session.fail(path: path, message: message)
                return nil
            }
            let start = range.lowerBound / session.meter.pageSize * session.meter.pageSize
            do throws(MmapError) {
                let map = try Mmap(fileDescriptor: fd, offset: Int64(start), count: range.upperBound - start)
                shrinkIfTesting(path)
                // In chunks, so that SIGINT or SIGTERM stops a big file promptly.
                var offset = 0
                while offset < map.count {
                    stopIfSignalled(held: held)
                    let end = offset + min(lockChunk, map.count - offset)
                    do throws(MmapError) {
                        try map.populate(range: offset..<end)
                    } catch  where error.errno == EFAULT || error.errno == EIO {
                        if let message = shrinkMessage(fd: fd, stat: st, while: "locked", then: "it is not locked") {
                            session.fail(path: path, message: message)
                            return nil
                        }
                        throw error
                    }
                    try map.lock(range: offset..<end)
                    offset = end
                }
                held.append(map)
                signalIfTesting(lockedFiles: held.count)
                stopIfSignalled(held: held)
            } catch {
                if error.errno == ENODEV {
                    session.skipWithoutPageCache(path: path)
                } else if error.errno == ENOMEM && error.operation == .map {
                    // Out of address space (RLIMIT_AS) or of mappings: give the reserve back so
                    // that the rest of the run can allocate, and go on with the next file.
                    budget.releaseReserve()
                    session.fail(path: path, message: "cannot be mapped (\(error)); skipping, holding the rest")
                } else {
                    session.fail(path: path, message: error.description)
                }
                return nil
            }
            guard let counts = session.measure(fd: fd, path: path, stat: st) else { return nil }
            return FileRecord(path: path, size: Int(st.st_size), counts: counts)
        }
        try session.run()
        // Hold only what was locked, and only with the pid file written (when one is asked for).
        var holding = held.count > 0
        if holding, let pidFile, let problem = writePidFile(pidPath ?? BytePath(argument: pidFile)) {
            session.fail(path: BytePath(argument: pidFile).bytes, message: problem)
            holding = false
        }
        stopIfSignalled(held: held, pidFile: holding ? pidPath : nil)
        let pid = Int(getpid())
        let lockedLine: String =
            if holding {
                "          Locked: \(held.count) files; holding until SIGINT or SIGTERM (pid \(pid))"
            } else if held.count == 0 {
                "          Locked: 0 files; nothing could be locked, so nothing is held"
            } else {
                "          Locked: \(held.count) files, released at once: the pid file could not be written"
            }
        var status = session.finish(
            extraLines: [lockedLine],
            extraJSON: { total in
                total.add("lockedFiles", held.count)
                total.add("holding", holding)
                total.add("pid", pid)
            }
        )
        if !holding { status = 1 }
        if daemon { Daemon.finishSetup(status: status) }
        if holding {
            while true {
                var received: CInt = 0
                sigwait(&signals, &received)
                if received == SIGHUP { continue }  // keep holding; the terminal may be gone
                break
            }
            if let pidPath { removePidFileIfOurs(pidPath) }
        }
        held.unlockAll()
        return status
    }

    /// How much of a file `lock` populates and locks between two checks for SIGINT and SIGTERM.
    static let lockChunk = 64 << 20

    /// SIGINT or SIGTERM while `lock` is still locking (they are blocked, so they wait):
    /// unlocks and unmaps what is held, removes the pid file if it is still ours, says so on
    /// stderr, and ends the process by that signal, as vmtouch ends.
    static func stopIfSignalled(held: HeldMappings, pidFile: BytePath? = nil) {
        var pending = sigset_t()
        sigpending(&pending)
        let signal: CInt =
            sigismember(&pending, SIGTERM) == 1 ? SIGTERM : sigismember(&pending, SIGINT) == 1 ? SIGINT : 0
        guard signal != 0 else { return }
        held.unlockAll()
        if let pidFile { removePidFileIfOurs(pidFile) }
        let name = signal == SIGTERM ? "SIGTERM" : "SIGINT"
        warn(
            "\(name) while locking: stopped after \(held.count) \(held.count == 1 ? "file" : "files"); nothing is held"
        )
        Output.stdout.flush()
        Glibc.signal(signal, SIG_DFL)
        var only = sigset_t()
        sigemptyset(&only)
        sigaddset(&only, signal)
        pthread_sigmask(SIG_UNBLOCK, &only, nil)
        exit(128 + signal)  // not reached: the pending signal ends the process on unblocking
    }

    /// Test hook: MMAPKIT_TEST_SIGNAL_AFTER_FILES=N sends this process SIGTERM once N files are
    /// locked, to stop the locking phase deterministically.
    static let signalAfterFilesForTesting: Int? = getenv("MMAPKIT_TEST_SIGNAL_AFTER_FILES").flatMap {
        Int(String(cString: $0))
    }

    static func signalIfTesting(lockedFiles: Int) {
        if let count = signalAfterFilesForTesting, count == lockedFiles { kill(getpid(), SIGTERM) }
    }

    /// Writes this process's pid to `pidFile`; returns the problem, or nil. The file is created
    /// if it does not exist (O_EXCL); an existing one is written over. When the write fails,
    /// only a file this process created is removed, and only if the name still refers to it:
    /// whatever else is at `pidFile` (another program's file, a device) is left alone.
    static func writePidFile(_ path: BytePath) -> String? {
        let text = Array("\(getpid())\n".utf8)
        var created = true
        var fd = path.withCString { open($0, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) }
        if fd < 0 && errno == EEXIST {
            created = false
            fd = path.withCString { open($0, O_WRONLY | O_TRUNC | O_NONBLOCK | O_CLOEXEC) }
        }
        if fd < 0 { return "cannot write the pid file: \(errnoText(errno))" }
        var written = 0
        var code: CInt = 0
        while written < text.count {
            let count = text.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 {
                code = count < 0 ? errno : ENOSPC
                break
            }
            written += count
        }
        if code == 0 && close(fd) != 0 {
            code = errno
        } else if code != 0 {
            if created && isSameRegularFile(fd: fd, path: path) { _ = path.withCString { unlink($0) } }
            close(fd)
        }
        return code == 0 ? nil : "cannot write the pid file: \(errnoText(code))"
    }

    /// Whether `path` names the regular file open as `fd` (not a symbolic link, not replaced).
    private static func isSameRegularFile(fd: CInt, path: BytePath) -> Bool {
        var open = stat()
        var named = stat()
        guard fstat(fd, &open) == 0, path.withCString({ lstat($0, &named) }) == 0 else { return false }
        return named.st_mode & S_IFMT == S_IFREG && named.st_dev == open.st_dev && named.st_ino == open.st_ino
    }

    /// Removes `pidFile` at exit only if it is a regular file that still holds this process's
    /// pid: another `lock` may have written its own pid there since.
    static func removePidFileIfOurs(_ path: BytePath) {
        let fd = path.withCString { open($0, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) }
        guard fd >= 0 else { return }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0, isSameRegularFile(fd: fd, path: path) else { return }
        let digits = buffer[0..<count].prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard Int(String(decoding: digits, as: UTF8.self)) == Int(getpid()) else { return }
        _ = path.withCString { unlink($0) }
    }
}

/// How many more mappings `lock` may make. The kernel allows vm.max_map_count (65530 by
/// default) per process; a lock that takes them all leaves none for malloc, and the Swift
/// runtime then traps ("failed to allocate"). So `lock` stops mapping 1024 short of the
/// limit, and also keeps 16 MiB of address space in reserve, given back when a mapping fails
/// with ENOMEM (RLIMIT_AS), so that the report can still be written.
struct MappingBudget {
    static let headroom = 1024
    private var limit: Int? = nil
    private var reserve: UnsafeMutableRawPointer? = nil
    private static let reserveBytes = 16 << 20

    init() {
        let base = mmap(nil, Self.reserveBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        if let base, base != MAP_FAILED { reserve = base }
    }

    /// nil if one more file may be mapped, else why not.
    mutating func refusal(held: Int) -> String? {
        if limit == nil {
            // Read once, at the first file: `lock` of one file pays two small reads.
            let maximum = Self.maxMapCount()
            limit = maximum.map { $0 - Self.headroom - Self.mappingsNow() + held } ?? Int.max
        }
        guard let limit, held >= limit else { return nil }
        let maximum = Self.maxMapCount() ?? 0
        return "cannot be mapped: vm.max_map_count (\(maximum)) leaves no more mappings for this process "
            + "(\(held) files are locked); skipping, holding the rest"
    }

    mutating func releaseReserve() {
        if let reserve { munmap(reserve, Self.reserveBytes) }
        reserve = nil
    }

    /// vm.max_map_count (or the test hook MMAPKIT_TEST_MAX_MAP_COUNT, to reach the limit with a
    /// small tree), or nil.
    static func maxMapCount() -> Int? {
        if let hook = getenv("MMAPKIT_TEST_MAX_MAP_COUNT") { return Int(String(cString: hook)) }
        return readSmallFile("/proc/sys/vm/max_map_count").flatMap {
            Int(String(decoding: $0.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }, as: UTF8.self))
        }
    }

    /// The number of this process's mappings (lines of /proc/self/maps).
    static func mappingsNow() -> Int {
        readSmallFile("/proc/self/maps").map { $0.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) } } ?? 0
    }

    private static func readSmallFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return bytes
    }
}

/// The mappings `lock` holds: unlocked and unmapped when released.
final class HeldMappings {
    private var maps: [Transfer] = []

    final class Transfer {
        var map: Mmap?
        init(_ map: consuming Mmap) { self.map = consume map }
    }

    var count: Int { maps.count }

    func append(_ map: consuming Mmap) { maps.append(Transfer(map)) }

    func unlockAll() {
        for box in maps {
            if var map = box.map.take() {
                try? map.unlock()
                try? map.unmap()
            }
        }
    }
}

/// `lock --daemon`: the parent waits until the child has locked its files and relays the
/// child's report and status, so that errors reach the terminal before the child detaches.
enum Daemon {
    /// Forks; the parent relays and exits, the child continues with stdout/stderr on a pipe.
    static func detachAfterSetup() throws {
        var fds: [CInt] = [0, 0]
        guard pipe(&fds) == 0 else { throw PageCacheError("pipe: \(errnoText(errno))") }
        Output.stdout.flush()
        let child = fork()
        if child < 0 { throw PageCacheError("fork: \(errnoText(errno))") }
        if child > 0 {
            close(fds[1])
            var buffer = [UInt8](repeating: 0, count: 4096)
            var last: UInt8 = 1
            var pending: [UInt8] = []
            var relayed = true
            while relayed {
                let count = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                pending += buffer[0..<count]
                // The child ends its report with NUL and one status byte.
                if let nul = pending.firstIndex(of: 0), nul + 1 < pending.count {
                    last = pending[nul + 1]
                    pending = Array(pending[..<nul])
                    break
                }
                relayed = relay(pending)
                pending.removeAll()
            }
            if relayed { relayed = relay(pending) }
            if !relayed {
                // The report is lost (`lock -d … > /dev/full`): the run failed, so nothing is held.
                let code = errno
                kill(child, SIGTERM)
                Output.stderr.line("mmapkit: cannot write the output: \(errnoText(code)); the daemon was stopped")
                exit(1)
            }
            exit(Int32(last))
        }
        close(fds[0])
        setsid()
        dup2(fds[1], STDOUT_FILENO)
        dup2(fds[1], STDERR_FILENO)
        close(fds[1])
        Output.stdout.lineBuffered = true
    }

    /// Writes `bytes` to stdout; false (errno set) if a write failed.
    private static func relay(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 {
                if count == 0 { errno = EIO }
                return false
            }
            offset += count
        }
        return true
    }

    /// The child, once locked: sends the status, then detaches stdio.
    static func finishSetup(status: Int32) {
        Output.stdout.flush()
        Output.stderr.flush()
        var trailer: [UInt8] = [0, UInt8(truncatingIfNeeded: status)]
        _ = trailer.withUnsafeMutableBytes { write(STDOUT_FILENO, $0.baseAddress, 2) }
        let null = open("/dev/null", O_RDWR)
        dup2(null, STDIN_FILENO)
        dup2(null, STDOUT_FILENO)
        dup2(null, STDERR_FILENO)
        if null > 2 { close(null) }
        _ = chdir("/")
    }
}
