import ArgumentParser
import Foundation
import Glibc
import MmapKit

/// Options shared by the page-cache commands.
struct PageCacheOptions: ParsableArguments {
    @Argument(help: "Files (and, with -r, directories).")
    var paths: [String]

    @Flag(name: [.short, .long], help: "Recurse into directories.")
    var recursive = false

    @Flag(help: "Print JSON (stable field names; see the README).")
    var json = false

    func validate() throws {
        if paths.isEmpty { throw ValidationError("give at least one path") }
    }
}

/// What every command reports about paths it could not handle.
struct Problems {
    var failed: [PathProblem] = []
    var skipped: [PathProblem] = []

    /// Records skips and failures among `targets` (one stderr line each) and returns the files.
    mutating func files(from targets: [Target]) -> [(path: String, size: Int)] {
        var files: [(String, Int)] = []
        for target in targets {
            switch target {
            case .file(let path, let size): files.append((path, size))
            case .skipped(let path, let reason): skip(path, reason)
            case .failed(let path, let reason): fail(path, reason)
            }
        }
        return files
    }

    mutating func fail(_ path: String, _ message: String) {
        failed.append(PathProblem(path: path, message: message))
        FileHandleOutput.standardError("mmapkit: \(path): \(message)")
    }

    mutating func skip(_ path: String, _ message: String) {
        skipped.append(PathProblem(path: path, message: message))
        FileHandleOutput.standardError("mmapkit: \(path): skipped: \(message)")
    }

    /// Exit status 1 when anything failed.
    func finish() throws {
        if !failed.isEmpty { throw ExitCode(1) }
    }
}

/// Totals over several files.
struct Totals: Encodable {
    var files = 0
    var bytes = 0
    var pages = 0
    var residentPages = 0
    var residentBytes = 0
    var percent: Double { pages == 0 ? 100 : Double(residentPages) * 100 / Double(pages) }

    mutating func add(_ file: FileResidency) {
        files += 1
        bytes += file.bytes
        pages += file.pages
        residentPages += file.residentPages
        residentBytes += file.residentBytes
    }

    enum CodingKeys: String, CodingKey { case files, bytes, pages, residentPages, residentBytes, percent }
    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(files, forKey: .files)
        try container.encode(bytes, forKey: .bytes)
        try container.encode(pages, forKey: .pages)
        try container.encode(residentPages, forKey: .residentPages)
        try container.encode(residentBytes, forKey: .residentBytes)
        try container.encode(percent, forKey: .percent)
    }
}

private func residencyLine(_ file: FileResidency) -> String {
    let percent = String(format: "%6.2f%%", file.percent)
    var line = "\(file.residentPages)/\(file.pages) pages  \(humanBytes(file.residentBytes))  \(percent)  \(file.path)"
    if let bar = file.bar { line += "\n  [\(bar)]" }
    return line
}

// MARK: - residency

/// `mmapkit residency`: which parts of files are in the page cache (like fincore or vmtouch).
struct Residency: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how much of each file is resident in the page cache (mincore)."
    )

    @OptionGroup var options: PageCacheOptions

    @Flag(name: .short, help: "Show a bar of which parts are resident (# all, o some, . none).")
    var verbose = false

    struct Report: Encodable {
        let files: [FileResidency]
        let total: Totals
        let skipped: [PathProblem]
        let errors: [PathProblem]
    }

    func run() throws {
        var problems = Problems()
        var results: [FileResidency] = []
        var totals = Totals()
        for file in problems.files(from: expandTargets(options.paths, recursive: options.recursive)) {
            do {
                let residency = try measureResidency(path: file.path, size: file.size, barWidth: verbose ? 60 : nil)
                results.append(residency)
                totals.add(residency)
                if !options.json { print(residencyLine(residency)) }
            } catch {
                problems.fail(file.path, error.description)
            }
        }
        if options.json {
            printJSON(Report(files: results, total: totals, skipped: problems.skipped, errors: problems.failed))
        } else if results.count > 1 {
            print(
                "total: \(totals.residentPages)/\(totals.pages) pages  \(humanBytes(totals.residentBytes))  "
                    + String(format: "%.2f%%", totals.percent) + "  in \(totals.files) files"
            )
        }
        try problems.finish()
    }
}

// MARK: - touch

/// `mmapkit touch`: bring files into the page cache, reporting errors.
struct Touch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read files into the page cache (MADV_POPULATE_READ, which reports errors)."
    )

    @OptionGroup var options: PageCacheOptions

    struct Report: Encodable {
        let files: [FileResidency]
        let total: Totals
        let seconds: Double
        let bytesPerSecond: Double
        let skipped: [PathProblem]
        let errors: [PathProblem]
    }

    func run() throws {
        var problems = Problems()
        let files = problems.files(from: expandTargets(options.paths, recursive: options.recursive))
        let progress = Progress(total: files.reduce(0) { $0 + $1.size })
        let clock = ContinuousClock()
        let start = clock.now
        var results: [FileResidency] = []
        var totals = Totals()
        for file in files {
            do {
                let map = try Mmap(path: file.path)
                var offset = 0
                while offset < file.size {
                    let end = min(file.size, offset + (64 << 20))
                    try map.populate(range: offset..<end)
                    progress.advance(by: end - offset, label: file.path)
                    offset = end
                }
                let residency = try measureResidency(path: file.path, size: file.size, barWidth: nil)
                results.append(residency)
                totals.add(residency)
            } catch {
                problems.fail(file.path, error.description)
            }
        }
        progress.finish()
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let rate = seconds > 0 ? Double(totals.bytes) / seconds : 0
        if options.json {
            printJSON(
                Report(
                    files: results,
                    total: totals,
                    seconds: seconds,
                    bytesPerSecond: rate,
                    skipped: problems.skipped,
                    errors: problems.failed
                )
            )
        } else {
            print(
                "touched \(totals.files) files: \(totals.pages) pages, \(humanBytes(totals.bytes)) in "
                    + String(format: "%.3f s (%@/s); ", seconds, humanBytes(Int(rate)))
                    + "\(totals.residentPages)/\(totals.pages) pages resident now"
            )
        }
        try problems.finish()
    }
}

/// A progress bar on stderr, only when stderr is a terminal.
final class Progress {
    let total: Int
    var done = 0
    let enabled = isatty(STDERR_FILENO) == 1

    init(total: Int) { self.total = total }

    func advance(by bytes: Int, label: String) {
        done += bytes
        guard enabled, total > 0 else { return }
        let width = 30
        let filled = done * width / total
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
        FileHandle.standardError.write(Data("\r\u{1B}[K[\(bar)] \(done * 100 / total)%  \(label)".utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}

// MARK: - evict

/// `mmapkit evict`: drop files from the page cache.
struct Evict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drop files from the page cache (fdatasync, then posix_fadvise DONTNEED).",
        discussion:
            "Dirty pages are written back first. Pages another process has mapped or locked can stay resident; the report says how many remain."
    )

    @OptionGroup var options: PageCacheOptions

    struct EvictedFile: Codable {
        let path: String
        let pages: Int
        let residentPagesBefore: Int
        let residentPagesAfter: Int
    }

    struct Report: Codable {
        let files: [EvictedFile]
        let skipped: [PathProblem]
        let errors: [PathProblem]
    }

    func run() throws {
        var problems = Problems()
        var results: [EvictedFile] = []
        for file in problems.files(from: expandTargets(options.paths, recursive: options.recursive)) {
            do {
                let before = try measureResidency(path: file.path, size: file.size, barWidth: nil)
                let fd = open(file.path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else {
                    problems.fail(file.path, String(cString: strerror(errno)))
                    continue
                }
                let synced = fdatasync(fd) == 0 ? 0 : errno
                let advised = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
                close(fd)
                if synced != 0 { problems.fail(file.path, "fdatasync: \(String(cString: strerror(synced)))") }
                if advised != 0 { problems.fail(file.path, "posix_fadvise: \(String(cString: strerror(advised)))") }
                let after = try measureResidency(path: file.path, size: file.size, barWidth: nil)
                let evicted = EvictedFile(
                    path: file.path,
                    pages: after.pages,
                    residentPagesBefore: before.residentPages,
                    residentPagesAfter: after.residentPages
                )
                results.append(evicted)
                if !options.json {
                    print(
                        "evicted \(file.path): \(before.residentPages) -> \(after.residentPages) of \(after.pages) pages resident"
                    )
                }
            } catch {
                problems.fail(file.path, error.description)
            }
        }
        if options.json { printJSON(Report(files: results, skipped: problems.skipped, errors: problems.failed)) }
        try problems.finish()
    }
}

// MARK: - lock

/// `mmapkit lock`: keep files locked in memory until interrupted.
struct Lock: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Map, prefault and mlock files, and hold them until SIGINT or SIGTERM.",
        discussion: "Locking is limited by RLIMIT_MEMLOCK (see `ulimit -l`) unless the process has CAP_IPC_LOCK."
    )

    @OptionGroup var options: PageCacheOptions

    struct Report: Codable {
        let locked: [FileResidency]
        let skipped: [PathProblem]
        let errors: [PathProblem]
    }

    func run() throws {
        // Block the signals first, so that they wait for sigwait below instead of killing us.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        var problems = Problems()
        let held = HeldMappings()
        var locked: [FileResidency] = []
        for file in problems.files(from: expandTargets(options.paths, recursive: options.recursive)) {
            do {
                let map = try Mmap(path: file.path)
                try map.populate()
                try map.lock()
                locked.append(try measureResidency(path: file.path, size: file.size, barWidth: nil))
                held.append(map)
            } catch {
                problems.fail(file.path, error.description)
            }
        }
        if options.json {
            printJSON(Report(locked: locked, skipped: problems.skipped, errors: problems.failed))
        } else if locked.isEmpty {
            print("nothing locked")
        } else {
            let bytes = locked.reduce(0) { $0 + $1.bytes }
            print(
                "locked \(locked.count) files (\(humanBytes(bytes))); holding until SIGINT or SIGTERM (pid \(getpid()))"
            )
        }
        fflush(nil)  // all C streams: stdout may be a pipe to a waiting script
        if !locked.isEmpty {
            var received: CInt = 0
            sigwait(&signals, &received)
            held.unlockAll()
            if !options.json { print("received signal \(received): unlocked and unmapped") }
        }
        try problems.finish()
    }
}

/// The mappings `lock` holds: unlocked and unmapped when released.
final class HeldMappings {
    private var maps: [Int: Transfer] = [:]

    final class Transfer {
        var map: Mmap?
        init(_ map: consuming Mmap) { self.map = consume map }
    }

    func append(_ map: consuming Mmap) { maps[maps.count] = Transfer(map) }

    func unlockAll() {
        for (_, box) in maps.sorted(by: { $0.key < $1.key }) {
            if var map = box.map.take() {
                try? map.unlock()
                try? map.unmap()
            }
        }
    }
}
