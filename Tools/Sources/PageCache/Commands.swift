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
                if let size = shrinkForTesting {
                    let writable = BytePath(path).withCString { open($0, O_WRONLY | O_CLOEXEC) }
                    _ = ftruncate(writable, off_t(size))
                    close(writable)
                }
                var offset = 0
                while offset < map.count {
                    let end = min(map.count, offset + chunk)
                    do throws(MmapError) {
                        try map.populate(range: offset..<end)
                    } catch  where error.errno == EFAULT || error.errno == EIO {
                        var now = stat()
                        if fstat(fd, &now) == 0 && Int(now.st_size) < Int(st.st_size) {
                            session.fail(
                                path: path,
                                message:
                                    "the file shrank from \(st.st_size) to \(now.st_size) bytes while being touched;"
                                    + " the pages up to the new end were read"
                            )
                            return nil
                        }
                        throw error
                    }
                    offset = end
                }
            } catch {
                if error.errno == ENODEV {
                    session.skip(
                        path: path,
                        reason: .noPageCache,
                        detail: "has no page cache (mmap: ENODEV)",
                        operand: true
                    )
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
        return session.finish(
            extraLines: [
                "   Touched Pages: \(session.newlyResidentPages) newly read (\(humanBytes(newly)) at "
                    + "\(humanBytes(Int(rate)))/s); the rest were resident already"
            ],
            extraJSON: { total in
                total.add("newlyResidentPages", session.newlyResidentPages)
                total.add("newlyResidentBytesPerSecond", rate)
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
            let advised = posix_fadvise(fd, off_t(range.lowerBound), off_t(range.count), POSIX_FADV_DONTNEED)
            if advised != 0 {
                session.fail(path: path, message: "posix_fadvise: \(errnoText(advised))")
                return nil
            }
            guard let after = session.measure(fd: fd, path: path, stat: st) else { return nil }
            return FileRecord(path: path, size: Int(st.st_size), counts: after, before: before)
        }
        try session.run()
        return session.finish(
            extraLines: ["   Evicted Pages: \(session.evictedPages)"],
            extraJSON: { $0.add("evictedPagesNow", session.evictedPages) }
        )
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

        if daemon { try Daemon.detachAfterSetup() }

        let held = HeldMappings()
        let session = Session(kind: .lock, options: options)
        session.action = { session, fd, path, st in
            let range = session.range.clipped(to: Int(st.st_size))
            guard !range.isEmpty else { return nil }
            let start = range.lowerBound / session.meter.pageSize * session.meter.pageSize
            do throws(MmapError) {
                let map = try Mmap(fileDescriptor: fd, offset: Int64(start), count: range.upperBound - start)
                try map.populate()
                try map.lock()
                held.append(map)
            } catch {
                if error.errno == ENODEV {
                    session.skip(
                        path: path,
                        reason: .noPageCache,
                        detail: "has no page cache (mmap: ENODEV)",
                        operand: true
                    )
                } else {
                    session.fail(path: path, message: error.description)
                }
                return nil
            }
            guard let counts = session.measure(fd: fd, path: path, stat: st) else { return nil }
            return FileRecord(path: path, size: Int(st.st_size), counts: counts)
        }
        try session.run()
        let status = session.finish(
            extraLines: [
                "          Locked: \(held.count) files; holding until SIGINT or SIGTERM (pid \(getpid()))"
            ],
            extraJSON: { total in
                total.add("lockedFiles", held.count)
                total.add("pid", Int(getpid()))
            }
        )
        if let pidFile {
            let text = "\(getpid())\n"
            let fd = BytePath(argument: pidFile).withCString {
                open($0, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            }
            if fd < 0 || text.utf8CString.withUnsafeBufferPointer({ write(fd, $0.baseAddress, $0.count - 1) }) < 0 {
                warn("cannot write the pid file \(pidFile): \(errnoText(errno))")
            }
            if fd >= 0 { close(fd) }
        }
        if daemon { Daemon.finishSetup(status: held.count == 0 ? 1 : status) }
        if held.count > 0 {
            while true {
                var received: CInt = 0
                sigwait(&signals, &received)
                if received == SIGHUP { continue }  // keep holding; the terminal may be gone
                break
            }
            held.unlockAll()
            if let pidFile { _ = BytePath(argument: pidFile).withCString { unlink($0) } }
        }
        return status
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
            while true {
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
                _ = pending.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
                pending.removeAll()
            }
            _ = pending.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            exit(Int32(last))
        }
        close(fds[0])
        setsid()
        dup2(fds[1], STDOUT_FILENO)
        dup2(fds[1], STDERR_FILENO)
        close(fds[1])
        Output.stdout.lineBuffered = true
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
