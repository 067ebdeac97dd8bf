import ArgumentParser
import Foundation
import Glibc
import MmapKit

extension OutputFormat: ExpressibleByArgument {}

/// `mmapkit bench`: every workload of BENCHMARKS.md, MmapKit side by side with raw system calls,
/// Foundation and pread, in one process run.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mmapkit bench",
        abstract: "Measure MmapKit against raw syscalls, Foundation and pread, side by side.",
        discussion: """
            Workloads: \(allWorkloadNames.joined(separator: ", ")).
            Implementations run interleaved, repetition by repetition, with the order rotated; the
            ratio is the median of per-repetition ratios to the workload's baseline. A checksum
            mismatch between implementations exits with status 1.
            """
    )

    static let allWorkloadNames = [
        "scan", "scan-populate", "random", "random-checked", "mapcycle-64k", "anon-touch", "anon-touch-populate",
        "anon-touch-thp",
        "write-flush", "read", "limit-scan", "views-scan", "ring-64k", "guard-load-8", "guard-copy-4k",
        "anon-populate", "anon-prefault", "file-populate", "ring-records-64k", "ring-records-4k",
    ]

    @Flag(help: "Small sizes (64 MiB data, 2,000 map cycles) and 3 repetitions: seconds, not minutes.")
    var quick = false

    @Option(help: "Size of the data file, e.g. 256M or 1G (default 1G, or 64M with --quick).")
    var size: String?

    @Option(help: "Repetitions of each workload (default 7, or 3 with --quick).")
    var repetitions: Int?

    @Option(help: "Comma-separated workloads to run (default: all).")
    var workloads: String?

    @Option(help: "Output format: table, json or csv.")
    var format: OutputFormat = .table

    @Option(help: "Threads for views-scan and the populate workloads (default: the number of cores).")
    var threads: Int?

    func validate() throws {
        if let size, parseSize(size) == nil { throw ValidationError("--size '\(size)' is not a size like 64M or 1G") }
        if let repetitions, repetitions < 1 { throw ValidationError("--repetitions must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let names = workloads?.split(separator: ",").map(String.init) {
            for name in names where !Self.allWorkloadNames.contains(name) {
                throw ValidationError(
                    "unknown workload '\(name)'; known: \(Self.allWorkloadNames.joined(separator: ", "))"
                )
            }
        }
    }

    func run() throws {
        let sizes = BenchSizes.make(quick: quick, size: size.flatMap(parseSize))
        let threadCount = threads ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let showProgress = isatty(STDERR_FILENO) == 1
        let progress: (String) -> Void = { message in
            guard showProgress else { return }
            FileHandle.standardError.write(Data("\r\u{1B}[K\(message)".utf8))
        }
        progress("creating data files (\(sizes.data >> 20) MiB) ...")
        let files = try DataFiles(dataSize: sizes.data, targetSize: sizes.target)
        defer { files.remove() }
        let selected = workloads.map { Set($0.split(separator: ",").map(String.init)) }
        let chosen = makeWorkloads(files: files, sizes: sizes, threads: threadCount).filter {
            selected?.contains($0.name) ?? true
        }
        // The kernel reclaims idle page cache within ~20 s here: keep the data files mapped and
        // resident for the whole run, and ask for them again before each workload.
        let warmData = try Mmap(path: files.data, options: MmapOptions().populate())
        let warmSmall = try Mmap(path: files.data64k, options: MmapOptions().populate())
        let series = try runWorkloads(
            chosen,
            repetitions: repetitions ?? (quick ? 3 : 7),
            warm: {
                try? warmData.populate()
                try? warmSmall.populate()
            },
            progress: progress
        )
        _ = consume warmData
        _ = consume warmSmall
        if showProgress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        let report = Report(machine: MachineInfo.current(), rows: series.map(ReportRow.init))
        print(render(report, as: format))
        let mismatches = report.rows.filter { !$0.checksumsAgree }
        if !mismatches.isEmpty {
            let names = mismatches.map { "\($0.workload)/\($0.implementation)" }.joined(separator: ", ")
            FileHandle.standardError.write(Data("error: checksum mismatch: \(names)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// "64M" → 67108864; plain numbers are bytes. Suffixes K, M, G (powers of 1024).
func parseSize(_ text: String) -> Int? {
    let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
    if let last = text.uppercased().last, let unit = units[last], let value = Int(text.dropLast()), value > 0 {
        return value * unit
    }
    return Int(text).flatMap { $0 > 0 ? $0 : nil }
}
