import CSQLite
import Glibc
import SegmentLog

// segment-log-bench: the segment log against an SQLite table (Debian's libsqlite3, WAL mode) in
// one process run, repetitions interleaved (A B C, B C A, ...) so that the machine's drift hits
// both sides alike; reports the median, the min–max spread and the median of the paired ratios
// (the log's rate over the other's, per repetition: above 1 the log is faster).
//
//   segment-log-bench [--quick] [--reps N] [--dir DIR]

// MARK: - Configuration

struct Config {
    var quick = false
    var reps = 5
    var dir = String(cString: getenv("TMPDIR") ?? strdup("/tmp"))
    /// Durable appends are timed in short, finely interleaved repetitions: their cost is the
    /// disk's flush latency, which drifts with whatever else uses the disk.
    var durableAppends: Int { quick ? 40 : 250 }
    var durableReps: Int { quick ? reps : 4 * reps }
    var groupRecordsSmall: Int { quick ? 5_000 : 100_000 }
    var groupRecordsLarge: Int { quick ? 1_000 : 20_000 }
    let batch = 100
    var readLogBytes: Int { quick ? 32 << 20 : 1 << 30 }
    var reads: Int { quick ? 20_000 : 200_000 }
}

var parsed = Config()
var argv = Array(CommandLine.arguments.dropFirst())
while let a = argv.first {
    argv.removeFirst()
    switch a {
    case "--quick":
        parsed.quick = true
        parsed.reps = 3
    case "--reps": parsed.reps = Int(argv.removeFirst())!
    case "--dir": parsed.dir = argv.removeFirst()
    default:
        say("usage: segment-log-bench [--quick] [--reps N] [--dir DIR]")
        exit(2)
    }
}

let config = parsed

/// Prints a line at once (stdout is block-buffered when it is a pipe or a file).
func say(_ line: String = "") {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

/// An error's text without the `segment-log:` prefix of its description.
func text(_ error: any Error) -> String {
    (error as? SegmentLogError)?.message ?? "\(error)"
}

func die(_ message: String) -> Never {
    say("segment-log-bench: \(message)")
    exit(1)
}

// MARK: - SQLite

final class SQLite {
    var db: OpaquePointer?

    init(path: String, synchronous: String) {
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil) == SQLITE_OK else {
            die("sqlite3_open \(path): \(String(cString: sqlite3_errmsg(db)))")
        }
        exec("PRAGMA journal_mode=WAL")
        exec("PRAGMA synchronous=\(synchronous)")
        exec("CREATE TABLE IF NOT EXISTS log(seq INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    }

    deinit { sqlite3_close(db) }

    func exec(_ sql: String) {
        var message: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(db, sql, nil, nil, &message) == SQLITE_OK else {
            die("\(sql): \(message.map { String(cString: $0) } ?? "?")")
        }
    }

    func prepare(_ sql: String) -> OpaquePointer? {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK else {
            die("prepare \(sql): \(String(cString: sqlite3_errmsg(db)))")
        }
        return stmt
    }

    /// INSERT through a prepared statement; the blob is bound without a copy (SQLITE_STATIC).
    func insert(_ stmt: OpaquePointer?, seq: Int, _ payload: [UInt8]) {
        sqlite3_bind_int64(stmt, 1, sqlite3_int64(seq))
        payload.withUnsafeBytes { _ = sqlite3_bind_blob(stmt, 2, $0.baseAddress, Int32($0.count), nil) }
        guard sqlite3_step(stmt) == SQLITE_DONE else { die("insert: \(String(cString: sqlite3_errmsg(db)))") }
        sqlite3_reset(stmt)
    }
}

// MARK: - Measurement

struct Sample {
    var ops: Int
    var seconds: Double
    var checksum: UInt64
    var rate: Double { Double(ops) / seconds }
}

struct Implementation {
    var name: String
    /// Untimed set-up, then the timed body; returns the sample.
    var run: () -> Sample
}

struct Row {
    var workload: String
    var name: String
    var rates: [Double]
    var ratios: [Double]  // the log's rate over this one's, per repetition
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

nonisolated(unsafe) var rows: [Row] = []

/// Runs each implementation once per repetition, rotating the order; the first implementation
/// is the log, which the paired ratios compare the others with.
func measure(
    _ workload: String,
    unit: String,
    reps: Int = config.reps,
    _ impls: [Implementation],
    warm: () -> Void = {}
) {
    var rates = Array(repeating: [Double](), count: impls.count)
    for rep in 0..<reps {
        var checksums: [UInt64?] = Array(repeating: nil, count: impls.count)
        for k in 0..<impls.count {
            let i = (k + rep) % impls.count
            warm()
            let sample = impls[i].run()
            rates[i].append(sample.rate)
            checksums[i] = sample.checksum
        }
        let sums = Set(checksums.compactMap { $0 })
        guard sums.count == 1 else { die("\(workload): checksums differ across implementations: \(checksums)") }
    }
    for i in 0..<impls.count {
        let ratios = zip(rates[0], rates[i]).map { $0 / $1 }
        rows.append(Row(workload: workload, name: impls[i].name, rates: rates[i], ratios: ratios))
        let r = rows.last!
        say(
            "  \(workload) \(r.name): median \(format(median(r.rates))) \(unit)/s "
                + "[\(format(r.rates.min()!))–\(format(r.rates.max()!))]"
                + (i == 0 ? "" : ", log ÷ this \(format2(median(ratios)))")
        )
    }
}

func format(_ x: Double) -> String {
    if x >= 100 { return String(Int(x.rounded())) }
    return format2(x)
}

func format2(_ x: Double) -> String {
    let h = Int((x * 100).rounded())
    let frac = h % 100
    return "\(h / 100).\(frac < 10 ? "0" : "")\(frac)"
}

func remove(_ path: String) {
    for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
}

/// Reads a file once in 1 MiB chunks, so that it is in the page cache before a timed read.
func warmFile(_ path: String) {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while buffer.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) > 0 {}
}

/// 64 payloads of `size` bytes, reused round-robin (pattern bytes, so checksums can be compared).
func payloads(_ size: Int) -> [[UInt8]] {
    (0..<64).map { Pattern.payload(seq: UInt64($0 + 1), length: size) }
}

// MARK: - Workloads

let logPath = config.dir + "/bench-\(getpid()).log"
let dbPath = config.dir + "/bench-\(getpid()).sqlite"
defer {
    unlink(logPath)
    remove(dbPath)
}

func durableAppends(size: Int) {
    let data = payloads(size)
    let n = config.durableAppends
    measure(
        "append \(size) B, durable each",
        unit: "appends",
        reps: config.durableReps,
        [
            Implementation(name: "segment log (msync + fdatasync on growth)") {
                unlink(logPath)
                do {
                    var log = try SegmentLog(path: logPath)
                    let t0 = monotonicSeconds()
                    for i in 0..<n { try log.append(data[i & 63]) }
                    return Sample(ops: n, seconds: monotonicSeconds() - t0, checksum: UInt64(log.count))
                } catch { die(text(error)) }
            },
            Implementation(name: "SQLite WAL, synchronous=FULL") {
                remove(dbPath)
                let db = SQLite(path: dbPath, synchronous: "FULL")
                let stmt = db.prepare("INSERT INTO log(seq, data) VALUES(?, ?)")
                defer { sqlite3_finalize(stmt) }
                let t0 = monotonicSeconds()
                for i in 0..<n { db.insert(stmt, seq: i + 1, data[i & 63]) }
                return Sample(ops: n, seconds: monotonicSeconds() - t0, checksum: UInt64(n))
            },
        ]
    )
}

func groupAppends(size: Int, records n: Int) {
    let data = payloads(size)
    let batch = config.batch
    let batches: [[[UInt8]]] = (0..<(n / batch)).map { b in (0..<batch).map { data[(b * batch + $0) & 63] } }
    func sqlite(_ sync: String) -> Implementation {
        Implementation(name: "SQLite WAL, synchronous=\(sync), one transaction per \(batch)") {
            remove(dbPath)
            let db = SQLite(path: dbPath, synchronous: sync)
            let stmt = db.prepare("INSERT INTO log(seq, data) VALUES(?, ?)")
            defer { sqlite3_finalize(stmt) }
            let t0 = monotonicSeconds()
            var seq = 0
            for b in batches {
                db.exec("BEGIN")
                for p in b {
                    seq += 1
                    db.insert(stmt, seq: seq, p)
                }
                db.exec("COMMIT")
            }
            return Sample(ops: seq, seconds: monotonicSeconds() - t0, checksum: UInt64(seq))
        }
    }
    measure(
        "append \(size) B, group commit of \(batch)",
        unit: "appends",
        [
            Implementation(name: "segment log (one msync per \(batch), durable)") {
                unlink(logPath)
                do {
                    var log = try SegmentLog(path: logPath)
                    let t0 = monotonicSeconds()
                    for b in batches { try log.append(contentsOf: b) }
                    return Sample(ops: log.count, seconds: monotonicSeconds() - t0, checksum: UInt64(log.count))
                } catch { die(text(error)) }
            },
            sqlite("NORMAL"),
            sqlite("FULL"),
        ]
    )
}

func randomReads() {
    let size = 4096
    let count = config.readLogBytes / size
    let data = payloads(size)
    say(
        "  building a \(config.readLogBytes >> 20) MiB log and SQLite table of \(count) records of \(size) B (untimed)"
    )
    unlink(logPath)
    remove(dbPath)
    do {
        var log = try SegmentLog(path: logPath)
        for i in 0..<count {
            try log.appendBuffered(data[i & 63])
            if i % 4096 == 4095 { try log.commit() }
        }
        try log.commit()
    } catch { die(text(error)) }
    do {
        let db = SQLite(path: dbPath, synchronous: "OFF")
        let stmt = db.prepare("INSERT INTO log(seq, data) VALUES(?, ?)")
        db.exec("BEGIN")
        for i in 0..<count { db.insert(stmt, seq: i + 1, data[i & 63]) }
        db.exec("COMMIT")
        sqlite3_finalize(stmt)
        db.exec("PRAGMA wal_checkpoint(TRUNCATE)")
    }
    let reader: SegmentLogReader
    do { reader = try SegmentLogReader(path: logPath) } catch { die(text(error)) }
    guard reader.count == count else { die("the reader sees \(reader.count) records, expected \(count)") }
    let db = SQLite(path: dbPath, synchronous: "NORMAL")
    let select = db.prepare("SELECT data FROM log WHERE seq = ?")
    let n = config.reads

    /// xorshift64*, seeded 42 (as BENCHMARKS.md): the same indices for every implementation.
    struct Indices {
        var x: UInt64 = 42
        mutating func next(_ bound: Int) -> Int {
            x ^= x >> 12
            x ^= x << 25
            x ^= x >> 27
            return Int((x &* 0x2545_F491_4F6C_DD1D) % UInt64(bound))
        }
    }
    func first8(_ b: [UInt8]) -> UInt64 { b.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } }
    func logReads(verify: Bool) -> Implementation {
        Implementation(
            name: verify ? "segment log reader, guarded copy + CRC check" : "segment log reader, guarded copy, no CRC"
        ) {
            var buffer: [UInt8] = []
            var indices = Indices()
            var sum: UInt64 = 0
            let t0 = monotonicSeconds()
            do {
                for _ in 0..<n {
                    try reader.read(at: indices.next(count), into: &buffer, verify: verify)
                    sum &+= first8(buffer)
                }
            } catch { die(text(error)) }
            return Sample(ops: n, seconds: monotonicSeconds() - t0, checksum: sum)
        }
    }
    measure(
        "random read of a 4 KiB record by index (\(config.readLogBytes >> 20) MiB)",
        unit: "reads",
        [
            logReads(verify: true),
            logReads(verify: false),
            Implementation(name: "SQLite WAL, SELECT by INTEGER PRIMARY KEY, copy out") {
                var buffer = [UInt8](repeating: 0, count: size)
                var indices = Indices()
                var sum: UInt64 = 0
                let t0 = monotonicSeconds()
                for _ in 0..<n {
                    sqlite3_bind_int64(select, 1, sqlite3_int64(indices.next(count) + 1))
                    guard sqlite3_step(select) == SQLITE_ROW else {
                        die("select: \(String(cString: sqlite3_errmsg(db.db)))")
                    }
                    let bytes = Int(sqlite3_column_bytes(select, 0))
                    let blob = sqlite3_column_blob(select, 0)
                    if buffer.count != bytes { buffer = [UInt8](repeating: 0, count: bytes) }
                    buffer.withUnsafeMutableBytes { _ = memcpy($0.baseAddress!, blob!, bytes) }
                    sum &+= first8(buffer)
                    sqlite3_reset(select)
                }
                return Sample(ops: n, seconds: monotonicSeconds() - t0, checksum: sum)
            },
        ],
        warm: {
            warmFile(logPath)
            warmFile(dbPath)
        }
    )
    sqlite3_finalize(select)
}

// MARK: - Main

var uts = utsname()
uname(&uts)
let kernel = withUnsafeBytes(of: uts.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
say(
    "segment-log-bench\(config.quick ? " --quick" : ""): \(config.reps) interleaved repetitions "
        + "(durable appends: \(config.durableReps) of \(config.durableAppends)); "
        + "\(sysconf(Int32(_SC_NPROCESSORS_ONLN))) cores, kernel \(kernel), SQLite \(String(cString: sqlite3_libversion())), "
        + "files in \(config.dir)"
)
let start = monotonicSeconds()
durableAppends(size: 100)
durableAppends(size: 4096)
groupAppends(size: 100, records: config.groupRecordsSmall)
groupAppends(size: 4096, records: config.groupRecordsLarge)
randomReads()

say("")
say("| workload | implementation | median /s | min–max /s | first row ÷ this: paired median [min–max] |")
say("| --- | --- | ---: | ---: | ---: |")
for r in rows {
    let ratio =
        r.name.hasPrefix("segment log") && r.ratios.allSatisfy({ $0 == 1 })
        ? "1 (baseline)" : format2(median(r.ratios)) + " [\(format2(r.ratios.min()!))–\(format2(r.ratios.max()!))]"
    say(
        "| \(r.workload) | \(r.name) | \(format(median(r.rates))) | \(format(r.rates.min()!))–\(format(r.rates.max()!)) | \(ratio) |"
    )
}
say("")
say("total \(Int(monotonicSeconds() - start)) s")
