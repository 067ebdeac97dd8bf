import Glibc

/// The options of the page-cache commands as plain values: what ``PageCacheOptions`` parses
/// with ArgumentParser, and ``FastCommandLine`` without it. Strings are exactly what
/// ArgumentParser hands over (``RawArguments`` placeholders for arguments that are not UTF-8).
package struct PageCacheSettings {
    package var paths: [String] = []
    package var recursive = false
    package var followSymlinks = false
    package var oneFileSystem = false
    package var countHardLinks = false
    package var maxFileSize: String? = nil
    package var range: String? = nil
    package var exclude: [String] = []
    package var include: [String] = []
    package var batch: String? = nil
    package var nullSeparated = false
    package var summaryOnly = false
    package var quiet = false
    package var json = false
    package var showSkips = false
    package var mincore = false

    package init() {}

    /// The usage error these values make, or nil (``PageCacheOptions/validate()`` reports it).
    package var usageError: String? {
        if paths.isEmpty && batch == nil { return "give at least one path (or --batch FILE)" }
        if let maxFileSize, parseByteCount(maxFileSize) == nil {
            return "--max-file-size '\(maxFileSize)' is not a size like 500M"
        }
        if exclude.contains("") || include.contains("") {
            return "an empty --exclude or --include pattern matches nothing; give a pattern"
        }
        if batch == "" { return "--batch needs a file name ('-' for standard input)" }
        if let range, ByteRange(range) == nil {
            return "--range '\(range)' is not a range like 0-64M, 1G- or -4K"
        }
        return nil
    }

    var walkOptions: WalkOptions {
        var options = WalkOptions()
        options.followSymlinks = followSymlinks
        options.oneFileSystem = oneFileSystem
        options.countHardLinks = countHardLinks
        options.severalOperands = paths.count > 1 || batch != nil
        options.maxFileSize = maxFileSize.flatMap(parseByteCount)
        options.include = include.map { Array(RawArguments.bytes(of: $0)) + [0] }
        options.exclude = exclude.map { Array(RawArguments.bytes(of: $0)) + [0] }
        return options
    }
}

/// One measured file, as a command reports it.
struct FileRecord {
    var path: [UInt8]
    var size: Int
    var counts: PageCounts
    /// `evict` and `touch`: the residency before acting.
    var before: PageCounts? = nil
}

/// The state of one command run: totals, problems and the streaming output.
final class Session: WalkVisitor {
    enum Kind { case residency, touch, evict, lock }

    let kind: Kind
    let options: PageCacheSettings
    let meter: Meter
    let range: ByteRange
    let barWidth: Int?
    /// What the command does with each file; returns the record to report, or nil.
    var action: ((Session, CInt, [UInt8], stat) -> FileRecord?)!

    private let out = Output.stdout
    private(set) var files = 0
    private(set) var bytes = 0
    private(set) var pages = 0
    private(set) var resident = 0
    private(set) var residentBytes = 0
    /// `touch` and `evict`: resident pages before and after, of the files visible both times.
    private(set) var measuredBefore = 0
    private(set) var measuredAfter = 0
    private(set) var hiddenFiles = 0
    /// Pages of hidden files: left out of `pages` (and of the percentage), reported apart.
    private(set) var hiddenPages = 0
    /// Files whose residency was visible after the action but hidden before it.
    private(set) var hiddenBefore = 0
    private(set) var dirty = 0
    private(set) var writeback = 0
    private(set) var evicted = 0
    private(set) var recentlyEvicted = 0
    private var cachestatCounted = false
    private(set) var failures: [(path: BytePath, message: String)] = []
    private var reportedSkips: [(path: BytePath, message: String)] = []
    private var skipCounts = [Int](repeating: 0, count: SkipReason.allCases.count)
    private let started = monotonicSeconds()
    private var lastProgress = 0.0
    private let showProgress: Bool
    var walker: Walker!

    init(kind: Kind, options: PageCacheSettings, barWidth: Int? = nil) {
        self.kind = kind
        self.options = options
        self.meter = Meter(forceMincore: options.mincore)
        self.range = options.range.flatMap(ByteRange.init) ?? ByteRange()
        self.barWidth = barWidth
        self.showProgress = isatty(STDERR_FILENO) == 1 && !options.quiet && !options.json
    }

    var printsFiles: Bool { !options.summaryOnly && !options.quiet }

    /// Walks every operand, reporting as it goes; then the summary.
    func run() throws {
        if options.json {
            out.write("{\"files\":[")
        }
        walker = Walker(options: options.walkOptions, visitor: self)
        for path in options.paths { walker.walk(operand: BytePath(argument: path)) }
        if let batch = options.batch {
            // Each batch path is measured, and its line written, as soon as it is read.
            if options.batch == "-" { out.lineBuffered = true }
            do {
                try readBatch(batch, separator: options.nullSeparated ? 0 : UInt8(ascii: "\n")) { path in
                    walker.walk(operand: path)
                }
            } catch {
                fail(path: Array(batch.utf8), message: error.description)
            }
        }
        clearProgress()
    }

    // MARK: - WalkVisitor

    func visit(fd: CInt, path: [UInt8], stat st: stat) {
        if let record = action(self, fd, path, st) { report(record) }
        if showProgress { progress(path) }
    }

    /// Skips a file the kernel cannot map (`ENODEV`: no page cache, as for many `/sys` files).
    func skipWithoutPageCache(path: [UInt8]) {
        skip(path: path, reason: .noPageCache, detail: "has no page cache (mmap: ENODEV)", operand: true)
    }

    func skip(path: [UInt8], reason: SkipReason, detail: String, operand: Bool) {
        skipCounts[reason.rawValue] += 1
        if operand || options.showSkips {
            reportedSkips.append((BytePath(path), detail))
            clearProgress()
            if !options.quiet || operand { warn("\(BytePath(path).escaped): skipped: \(detail)") }
        }
    }

    func fail(path: [UInt8], message: String) {
        failures.append((BytePath(path), message))
        clearProgress()
        warn("\(BytePath(path).escaped): \(message)")
    }

    // MARK: - Records

    /// Measures `range` of an open file, turning the odd outcomes into skips and failures.
    func measure(fd: CInt, path: [UInt8], stat st: stat, barWidth: Int? = nil) -> PageCounts? {
        switch meter.measure(fd: fd, stat: st, range: range.clipped(to: Int(st.st_size)), barWidth: barWidth) {
        case .measured(let counts): return counts
        case .noPageCache:
            skipWithoutPageCache(path: path)
            return nil
        case .failed(let message):
            fail(path: path, message: message)
            return nil
        }
    }

    private func report(_ record: FileRecord) {
        let clipped = range.clipped(to: record.size)
        let counts = record.counts
        let page = meter.pageSize
        // Resident bytes are resident pages times the page size, as vmtouch counts them: a
        // one-byte file that is resident holds a whole page of memory.
        let recordResidentBytes = counts.hidden ? 0 : counts.resident * page
        files += 1
        if counts.hidden {
            // Neither numerator nor denominator: nothing is known about these pages.
            hiddenFiles += 1
            hiddenPages = hiddenPages.saturatingAdd(counts.pages)
        } else {
            bytes = bytes.saturatingAdd(clipped.count)
            pages = pages.saturatingAdd(counts.pages)
            resident = resident.saturatingAdd(counts.resident)
            residentBytes = residentBytes.saturatingAdd(recordResidentBytes)
            if let before = record.before {
                if before.hidden {
                    hiddenBefore += 1
                } else {
                    measuredBefore += before.resident
                    measuredAfter += counts.resident
                }
            }
        }
        guard !options.quiet else { return }
        if options.json {
            var object = JSONObject()
            object.add(path: BytePath(record.path))
            object.add("bytes", clipped.count)
            object.add("pages", counts.pages)
            if counts.hidden {
                object.add("hidden", true)
            } else {
                object.add("residentPages", counts.resident)
                object.add("residentBytes", recordResidentBytes)
                object.add("percent", percentValue(counts.resident, of: counts.pages))
            }
            if let dirty = counts.dirty {
                object.add("dirtyPages", dirty)
                object.add("writebackPages", counts.writeback ?? 0)
                object.add("evictedPages", counts.evicted ?? 0)
                object.add("recentlyEvictedPages", counts.recentlyEvicted ?? 0)
            }
            if let before = record.before, !before.hidden {
                object.add("residentPagesBefore", before.resident)
                if kind == .evict { object.add("residentPagesAfter", counts.resident) }
                if kind == .touch { object.add("newlyResidentPages", max(0, counts.resident - before.resident)) }
            }
            if let bar = counts.bar { object.add("bar", bar) }
            out.write(files == 1 ? "\n" : ",\n")
            out.write(object.json)
        } else if printsFiles {
            clearProgress()
            var line = ""
            let name = BytePath(record.path).escaped
            if counts.hidden {
                line =
                    padLeft("?", 10) + "/" + String(counts.pages) + "  residency hidden by the kernel"
                    + " (you can neither write nor own this file)  " + name
            } else {
                let fraction = padLeft(String(counts.resident), 10) + "/" + String(counts.pages)
                line = fraction + String(repeating: " ", count: max(1, 22 - fraction.count))
                line +=
                    padLeft(humanBytes(recordResidentBytes), 10) + " "
                    + padLeft(percentText(counts.resident, of: counts.pages), 8)
                if let before = record.before, kind == .evict {
                    line += "  (was " + (before.hidden ? "?" : String(before.resident)) + ")"
                }
                if let before = record.before, kind == .touch, !before.hidden {
                    line += "  (+" + String(max(0, counts.resident - before.resident)) + ")"
                }
                line += "  " + name
            }
            if let bar = counts.bar { line += "\n  [" + bar + "]" }
            out.line(line)
        }
    }

    // MARK: - Summary

    /// Prints the summary (text or the end of the JSON object) and returns the exit status.
    func finish(extraLines: [String] = [], extraJSON: (inout JSONObject) -> Void = { _ in }) -> Int32 {
        let elapsed = monotonicSeconds() - started
        if options.json {
            out.write(files == 0 ? "],\n" : "\n],\n")
            var total = JSONObject()
            total.add("files", files)
            total.add("directories", walker?.directories ?? 0)
            total.add("foldedNames", walker?.foldedNames ?? 0)
            total.add("bytes", bytes)
            total.add("pages", pages)
            total.add("residentPages", resident)
            total.add("residentBytes", residentBytes)
            total.add("percent", percentValue(resident, of: pages))
            total.add("hiddenFiles", hiddenFiles)
            total.add("hiddenPages", hiddenPages)
            if cachestatCounted {
                total.add("dirtyPages", dirty)
                total.add("writebackPages", writeback)
                total.add("evictedPages", evicted)
                total.add("recentlyEvictedPages", recentlyEvicted)
            }
            total.add("seconds", elapsed)
            extraJSON(&total)
            out.write("\"total\":" + total.json + ",\n")
            var counts = JSONObject()
            for reason in SkipReason.allCases { counts.add(reason.key, skipCounts[reason.rawValue]) }
            out.write("\"skippedCounts\":" + counts.json + ",\n")
            out.write("\"skipped\":[" + problemsJSON(reportedSkips) + "],\n")
            out.write("\"errors\":[" + problemsJSON(failures) + "]}")
            out.line("")
        } else if !options.quiet {
            let folded = walker?.foldedNames ?? 0
            var lines = [
                "           Files: \(files)"
                    + (folded > 0 ? "  (\(folded) more \(folded == 1 ? "name" : "names") folded: \(foldNote))" : ""),
                "     Directories: \(walker?.directories ?? 0)",
                "  Resident Pages: \(resident)/\(pages)  \(humanBytes(residentBytes))/"
                    + "\(humanBytes(pages.saturatingMultiply(meter.pageSize)))  " + percentText(resident, of: pages),
            ]
            if hiddenFiles > 0 {
                lines.append(
                    "    Hidden Files: \(hiddenFiles), \(hiddenPages) pages, not counted above (the kernel hides the "
                        + "residency of files you can neither write nor own)"
                )
            }
            if cachestatCounted && (dirty > 0 || writeback > 0 || evicted > 0 || kind != .residency) {
                lines.append(
                    "      Page Cache: \(dirty) dirty, \(writeback) under writeback, "
                        + "\(evicted) evicted (\(recentlyEvicted) recently)"
                )
            }
            lines += extraLines
            let skipped = skipCounts.reduce(0, +)
            if skipped > 0 {
                let parts = SkipReason.allCases.filter { skipCounts[$0.rawValue] > 0 }.map {
                    "\($0.summary): \(skipCounts[$0.rawValue])"
                }
                lines.append("         Skipped: \(skipped) (" + parts.joined(separator: ", ") + ")")
            }
            if !failures.isEmpty { lines.append("          Errors: \(failures.count) (listed on stderr)") }
            lines.append("         Elapsed: " + secondsText(elapsed))
            if printsFiles && files > 0 { out.line("") }
            for line in lines { out.line(line) }
        }
        out.flush()
        if out.writeError != 0 {
            // `residency big > /dev/full`: the report is lost, so the run failed.
            Output.stderr.line("mmapkit: cannot write the output: \(errnoText(out.writeError))")
            return 1
        }
        return failures.isEmpty ? 0 : 1
    }

    private let foldNote = "links or mounts of files and directories already counted"

    var newlyResidentPages: Int { max(0, measuredAfter - measuredBefore) }
    var evictedPages: Int { max(0, measuredBefore - measuredAfter) }
    /// Files whose change `touch` and `evict` cannot measure (residency hidden before or after).
    var unmeasuredFiles: Int { hiddenFiles + hiddenBefore }
    /// Files whose change was measured.
    var measuredFiles: Int { files - unmeasuredFiles }

    private func problemsJSON(_ problems: [(path: BytePath, message: String)]) -> String {
        problems.map { problem in
            var object = JSONObject()
            object.add(path: problem.path)
            object.add("message", problem.message)
            return object.json
        }.joined(separator: ",")
    }

    // MARK: - Progress

    private func progress(_ path: [UInt8]) {
        let now = monotonicSeconds()
        guard now - lastProgress > 0.2 else { return }
        lastProgress = now
        out.flush()
        let text = "\(files) files, \(walker.directories) directories, \(resident)/\(pages) pages resident  "
        var name = BytePath(path).escaped
        if name.count > 60 { name = "..." + String(name.suffix(57)) }
        Output.stderr.write("\r\u{1B}[K" + text + name)
        Output.stderr.flush()
        progressShown = true
    }

    private var progressShown = false

    private func clearProgress() {
        guard progressShown else { return }
        progressShown = false
        Output.stderr.write("\r\u{1B}[K")
        Output.stderr.flush()
    }
}
