import Glibc
import SegmentLog

// segment-log: the example's command-line tool.
//
//   segment-log append PATH [COUNT]           append COUNT pattern records, durably (default 10)
//   segment-log dump PATH                     open as a reader; print what it sees
//   segment-log follow PATH COUNT             follow the writer until COUNT records are durable,
//                                             checking each (the reader in another process)
//   segment-log crash-test [--kills N] [--seed S] [--dir D]
//                                             SIGKILL a writing child N times (default 100)
//   segment-log crash-child PATH SEED         (the crash test's child: appends and acknowledges
//                                             on stdout until killed)

/// Prints a line at once (stdout is block-buffered when it is a pipe or a file).
func say(_ line: String = "") {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

func fail(_ message: String) -> Never {
    let line = Array("segment-log: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(1)
}

/// An error's text without the `segment-log:` prefix of its description, which ``fail(_:)`` adds.
func text(_ error: any Error) -> String {
    (error as? SegmentLogError)?.message ?? "\(error)"
}

func usage() -> Never {
    fail(
        "usage: segment-log append PATH [COUNT] | dump PATH | follow PATH COUNT | crash-test [--kills N] [--seed S] [--dir D]"
    )
}

/// Writes all of `bytes` to `fd` or exits.
func writeAll(_ fd: CInt, _ bytes: [UInt8]) {
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
        if n < 0 {
            if errno == EINTR { continue }
            exit(3)
        }
        done += n
    }
}

func fixed1(_ x: Double) -> String {
    let tenths = Int((x * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}

func checkPattern(_ bytes: [UInt8], seq: UInt64) -> Bool {
    bytes == Pattern.payload(seq: seq)
}

// MARK: - Crash test

/// The child: appends pattern records forever (one at a time, or in groups with one commit),
/// writing each sequence number, 8 bytes little-endian, to stdout once `append` has returned.
func crashChild(path: String, seed: UInt64) -> Never {
    var rng = SplitMix64(seed: seed)
    do {
        var log = try SegmentLog(path: path, options: .init(initialSize: 64 << 10, maxGrowthStep: 1 << 20))
        while true {
            let next = UInt64(log.count + 1)
            var acks: [UInt8] = []
            if rng.next() % 4 == 0 {
                let n = Int(2 + rng.next() % 15)
                let seqs = try log.append(contentsOf: (0..<n).map { Pattern.payload(seq: next + UInt64($0)) })
                for s in seqs { withUnsafeBytes(of: s.littleEndian) { acks += $0 } }
            } else {
                let s = try log.append(Pattern.payload(seq: next))
                withUnsafeBytes(of: s.littleEndian) { acks += $0 }
            }
            writeAll(1, acks)
        }
    } catch {
        fail("crash child: \(text(error))")
    }
}

struct CrashStats {
    var kills = 0
    var acknowledged = 0
    var lost = 0
    var tornTailsCut = 0
    var killedBeforeFirstAck = 0
    var records = 0
    var logBytes = 0
}

/// Verifies records `range` of `log` against the pattern; returns the first bad one.
func firstBadRecord(_ log: borrowing SegmentLog, _ range: Range<Int>) -> (Int, String)? {
    var buffer: [UInt8] = []
    for i in range {
        do {
            try log.read(at: i, into: &buffer)
        } catch {
            return (i, "\(text(error))")
        }
        if !checkPattern(buffer, seq: UInt64(i + 1)) { return (i, "payload differs from what was appended") }
    }
    return nil
}

func crashTest(kills: Int, seed: UInt64, dir: String) -> Never {
    let exe = ChildProcess.currentExecutable
    let path = dir + "/crash-test-\(getpid()).log"
    say("crash test: \(kills) kills, seed \(seed) (replay: segment-log crash-test --kills \(kills) --seed \(seed))")
    say("log: \(path)")
    unlink(path)
    var rng = SplitMix64(seed: seed)
    var stats = CrashStats()
    var lastAck: UInt64 = 0
    var previousCount = 0
    var verified = 0
    let start = monotonicSeconds()
    do {
        _ = try SegmentLog(path: path)
    } catch {
        fail("cannot create \(path): \(text(error))")
    }
    for round in 1...kills {
        let childSeed = rng.next()
        // Where to kill: after 0 (during start-up and recovery) to 40 acknowledgements, then
        // after a random pause of up to 3 ms, or at once.
        let target = rng.next() % 16 == 0 ? 0 : Int(1 + rng.next() % 40)
        let pause = rng.next() % 3 == 0 ? 0 : UInt32(rng.next() % 3000)
        let child: ChildProcess
        do {
            child = try ChildProcess([exe, "crash-child", path, String(childSeed)], captureOutput: true)
        } catch {
            fail("\(text(error))")
        }
        var acks: [UInt64] = []
        var pending: [UInt8] = []
        var buffer: [UInt8] = []
        var ended = false
        while acks.count < target {
            let n = child.read(into: &buffer, count: 4096)
            if n == 0 {
                ended = true
                break
            }
            pending += buffer[0..<n]
            while pending.count >= 8 {
                acks.append(pending.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
                pending.removeFirst(8)
            }
        }
        if pause > 0 { usleep(pause) }
        kill(child.pid, SIGKILL)
        // Acknowledgements written before the kill count too.
        if !ended {
            pending += child.readAll()
        }
        close(child.output)
        let status = child.wait()
        let signaled = (status & 0x7F) != 0 && (status & 0x7F) != 0x7F
        guard signaled && (status & 0x7F) == SIGKILL else {
            fail("round \(round): the child ended by itself (wait status \(status)) instead of being killed")
        }
        while pending.count >= 8 {
            acks.append(pending.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
            pending.removeFirst(8)
        }
        stats.kills += 1
        if acks.isEmpty { stats.killedBeforeFirstAck += 1 }
        for a in acks {
            guard a > lastAck else { fail("round \(round): acknowledgement \(a) after \(lastAck)") }
            lastAck = a
        }
        stats.acknowledged += acks.count

        // A reader first, before any recovery: it must see every acknowledged record (the
        // writer publishes its durable end before append returns) and nothing torn.
        do {
            let reader = try SegmentLogReader(path: path)
            guard reader.count >= Int(lastAck) else {
                fail("round \(round): a reader sees \(reader.count) records, \(lastAck) were acknowledged")
            }
            var buffer: [UInt8] = []
            for i in min(max(0, verified - 1), reader.count)..<reader.count {
                try reader.read(at: i, into: &buffer)
                guard checkPattern(buffer, seq: UInt64(i + 1)) else {
                    fail("round \(round): a reader sees record \(i + 1) wrong before recovery")
                }
            }
        } catch {
            fail("round \(round): a reader cannot read the log before recovery: \(text(error))")
        }

        // Reopen (recovery) and check.
        do {
            let log = try SegmentLog(path: path)
            if log.recovery.cutBytes > 0 { stats.tornTailsCut += 1 }
            let count = log.count
            let lostHere = acks.filter { $0 > UInt64(count) }.count
            if lostHere > 0 || count < previousCount {
                stats.lost += lostHere
                fail(
                    "round \(round): \(lostHere) acknowledged records lost; the log has \(count) records "
                        + "(had \(previousCount)), last acknowledged \(lastAck); recovery: \(log.recovery)"
                )
            }
            // Every record is checked every 100 rounds and at the end; otherwise the new ones
            // (recovery has checked every checksum of the chain anyway).
            let from = (round % 100 == 0 || round == kills) ? 0 : max(0, verified - 1)
            if let (i, why) = firstBadRecord(log, from..<count) {
                fail(
                    "round \(round): record \(i + 1) of \(count) is visible but wrong: \(why); recovery: \(log.recovery)"
                )
            }
            verified = count
            previousCount = count
            stats.records = count
            stats.logBytes = log.end
        } catch {
            fail("round \(round): cannot reopen the log: \(text(error))")
        }
        if round % 100 == 0 {
            say(
                "  \(round) kills, \(stats.acknowledged) acknowledged, \(stats.lost) lost, "
                    + "\(stats.tornTailsCut) torn tails cut (\(Int(monotonicSeconds() - start)) s)"
            )
        }
    }
    let elapsed = monotonicSeconds() - start
    say(
        """
        crash test passed: seed \(seed)
          kills                          \(stats.kills) (\(stats.killedBeforeFirstAck) before the child's first acknowledgement)
          records acknowledged           \(stats.acknowledged)
          records lost                   \(stats.lost)
          torn records visible           0 (to a reader before recovery, and after it)
          recoveries that cut a tail     \(stats.tornTailsCut)
          records in the log             \(stats.records) (\(stats.logBytes) bytes; \(stats.records - stats.acknowledged) \
        written whole but killed before their acknowledgement, kept)
          duration                       \(fixed1(elapsed)) s
        """
    )
    unlink(path)  // kept on failure (fail() exits first), for a look at what broke
    exit(0)
}

// MARK: - Commands

let args = Array(CommandLine.arguments.dropFirst())
guard let command = args.first else { usage() }
switch command {
case "append":
    guard args.count >= 2 else { usage() }
    let count = args.count >= 3 ? Int(args[2]) ?? 10 : 10
    do {
        var log = try SegmentLog(path: args[1])
        say("recovery: \(log.recovery)")
        for _ in 0..<count {
            try log.append(Pattern.payload(seq: UInt64(log.count + 1)))
        }
        say("\(log.count) records, \(log.end) bytes used of \(log.fileSize)")
    } catch {
        fail("\(text(error))")
    }
case "dump":
    guard args.count >= 2 else { usage() }
    do {
        let reader = try SegmentLogReader(path: args[1])
        var buffer: [UInt8] = []
        var bytes = 0
        for i in 0..<reader.count {
            try reader.read(at: i, into: &buffer)
            bytes += buffer.count
        }
        say("\(reader.count) durable records, \(bytes) payload bytes, file \(reader.mappedSize) bytes")
        if reader.count > 0 {
            let r = try reader.residency(ofRecords: 0..<reader.count)
            say("resident: \(r.residentCount) of \(r.pageCount) pages")
        }
    } catch {
        fail("\(text(error))")
    }
case "follow":
    guard args.count >= 3, let want = Int(args[2]) else { usage() }
    do {
        var reader = try SegmentLogReader(path: args[1])
        var buffer: [UInt8] = []
        var checked = 0
        var polls = 0
        while true {
            while checked < reader.count {
                try reader.read(at: checked, into: &buffer)
                guard checkPattern(buffer, seq: UInt64(checked + 1)) else {
                    fail("follow: record \(checked + 1) differs from what was appended")
                }
                checked += 1
            }
            if checked >= want { break }
            usleep(200)
            polls += 1
            try reader.refresh()
        }
        say("followed \(checked) records, \(reader.remaps) remaps, file \(reader.mappedSize) bytes")
    } catch {
        fail("follow: \(text(error))")
    }
case "crash-child":
    guard args.count >= 3, let seed = UInt64(args[2]) else { usage() }
    crashChild(path: args[1], seed: seed)
case "crash-test":
    var kills = 100
    var seed = UInt64(time(nil)) &* 2_654_435_761 ^ UInt64(getpid())
    var dir = String(cString: getenv("TMPDIR") ?? strdup("/tmp"))
    var i = 1
    while i < args.count {
        guard i + 1 < args.count else { usage() }
        switch args[i] {
        case "--kills": kills = Int(args[i + 1]) ?? kills
        case "--seed": seed = UInt64(args[i + 1]) ?? seed
        case "--dir": dir = args[i + 1]
        default: usage()
        }
        i += 2
    }
    crashTest(kills: kills, seed: seed, dir: dir)
default:
    usage()
}
