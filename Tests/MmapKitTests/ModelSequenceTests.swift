import Foundation
import Glibc
import MmapKit
import Testing

// A model-based sequence test (design rule 8): seeded random sequences of operations on files,
// anonymous memory, views, reservations and growable files, run against a byte-level model of
// every file and of what every live handle must read. After every step: the files (read with
// pread through a separate descriptor) changed only as the model says, every handle reads what
// the model says through guarded reads (a page past the end of the file must fault, not kill
// the process), the live-mapping counter matches the model, and /proc/self/maps holds the
// model's mappings with the model's permissions and nothing at released addresses.
//
// Each seed runs in a forked child, so a trap or an unguarded SIGBUS in the library is reported
// like any other failure. A failing sequence is shrunk by delta debugging (replaying candidates
// in further children) and printed, step by step, with its seed.
//
// Environment: MMAPKIT_MODEL_SEED runs one seed; MMAPKIT_MODEL_SEEDS sets how many seeds
// (default 20); MMAPKIT_MODEL_STEPS sets the steps per seed (default 5000).

extension MmapKitTests {
    @Suite struct ModelSequenceTests {
        @Test(.disabled(if: runningUnderThreadSanitizer, "TSan cannot recover from SIGBUS, nor fork safely"))
        func randomSequencesAgreeWithTheModel() {
            let environment = ProcessInfo.processInfo.environment
            let steps = environment["MMAPKIT_MODEL_STEPS"].flatMap { Int($0) } ?? 5000
            let seeds: [UInt64]
            if let seed = environment["MMAPKIT_MODEL_SEED"].flatMap({ UInt64($0) }) {
                seeds = [seed]
            } else {
                seeds = (1...UInt64(environment["MMAPKIT_MODEL_SEEDS"].flatMap { Int($0) } ?? 20)).map { $0 }
            }
            var reported: [String: UInt64] = [:]
            var total = 0
            // One child per core at a time; each child is deterministic on its own.
            let parallel = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
            var runs: [(UInt64, ChildRun)] = []
            for batch in stride(from: 0, to: seeds.count, by: parallel) {
                let children = seeds[batch..<min(seeds.count, batch + parallel)].map { seed in
                    (seed, spawnChild(seed: seed, steps: steps, replay: nil, tracing: false))
                }
                runs += children.map { ($0.0, collect($0.1)) }
            }
            for (seed, run) in runs {
                total += run.ops.count
                guard run.failed else { continue }
                if let first = reported[run.signature] {
                    Issue.record("seed \(seed) fails like seed \(first): \(run.failure)")
                    continue
                }
                reported[run.signature] = seed
                Issue.record(Comment(rawValue: shrinkAndDescribe(seed: seed, run: run)))
            }
            print("ModelSequenceTests: \(total) steps over \(seeds.count) seeds")
        }
    }
}

// MARK: - Generating steps

// MARK: - Running in a child process

/// The outcome of one run in a child process.
struct ChildRun {
    var ops: [ModelOp] = []
    var texts: [String] = []
    var exitStatus: CInt = 0
    var signal: CInt = 0

    var failed: Bool { exitStatus != 0 || signal != 0 }

    var failure: String {
        if signal != 0 { return "the process died with signal \(signal) (\(signalName(signal)))" }
        return texts.last ?? "exit status \(exitStatus)"
    }

    /// What a shrunk sequence must still produce: the signal, or the failure message without numbers.
    var signature: String {
        if signal != 0 { return "signal \(signal)" }
        return String(failure.drop { $0 != ":" }.filter { !$0.isNumber })
    }
}

func signalName(_ signal: CInt) -> String {
    switch signal {
    case SIGBUS: "SIGBUS"
    case SIGSEGV: "SIGSEGV"
    case SIGILL: "SIGILL, a trap"
    case SIGTRAP: "SIGTRAP, a trap"
    case SIGABRT: "SIGABRT"
    default: "signal \(signal)"
    }
}

/// Runs `steps` generated steps (or replays `replay`) of `seed` in a forked child.
func runInChild(seed: UInt64, steps: Int, replay: [ModelOp]?, tracing: Bool) -> ChildRun {
    collect(spawnChild(seed: seed, steps: steps, replay: replay, tracing: tracing))
}

/// A child running a sequence; it logs its steps to a file, so several can run at once.
struct Child {
    var pid: pid_t
    var directory: TemporaryDirectory
    var log: String { directory.file("steps.log") }
}

func spawnChild(seed: UInt64, steps: Int, replay: [ModelOp]?, tracing: Bool) -> Child {
    let directory = TemporaryDirectory()
    let output = unsafe open(directory.file("steps.log"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
    precondition(output >= 0)
    let pid = fork()
    precondition(pid >= 0, "fork failed")
    if pid == 0 {
        childMain(seed: seed, steps: steps, replay: replay, tracing: tracing, output: output, directory: directory.path)
    }
    close(output)
    return Child(pid: pid, directory: directory)
}

func collect(_ child: Child) -> ChildRun {
    var status: CInt = 0
    while unsafe waitpid(child.pid, &status, 0) < 0 && errno == EINTR {}
    var run = ChildRun()
    if status & 0x7f == 0 { run.exitStatus = (status >> 8) & 0xff } else { run.signal = status & 0x7f }
    let data = readFile(child.log)
    var position = 0
    while position + 5 <= data.count {
        let type = data[position]
        let length =
            Int(data[position + 1]) | Int(data[position + 2]) << 8 | Int(data[position + 3]) << 16
            | Int(data[position + 4]) << 24
        position += 5
        guard position + length <= data.count else { break }
        let payload = data[position..<(position + length)]
        position += length
        if type == 0 {
            var values: [Int64] = []
            for index in 0..<7 {
                var value: Int64 = 0
                for byte in 0..<8 { value |= Int64(payload[payload.startIndex + index * 8 + byte]) << (8 * byte) }
                values.append(value)
            }
            if let op = ModelOp(encoded: values) { run.ops.append(op) }
        } else {
            run.texts.append(String(decoding: payload, as: UTF8.self))
        }
    }
    return run
}

/// Writes one record (0: a step, 1: text) to the pipe, unbuffered so that it survives a crash.
private func send(_ fd: CInt, _ type: UInt8, _ payload: [UInt8]) {
    let length = payload.count
    var record: [UInt8] = [type, UInt8(length & 0xff), UInt8(length >> 8 & 0xff), UInt8(length >> 16 & 0xff), 0]
    record += payload
    var done = 0
    while done < record.count {
        let n = unsafe record.withUnsafeBytes { unsafe write(fd, $0.baseAddress! + done, record.count - done) }
        if n <= 0 { _exit(3) }
        done += n
    }
}

private func childMain(
    seed: UInt64,
    steps: Int,
    replay: [ModelOp]?,
    tracing: Bool,
    output: CInt,
    directory: String
) -> Never {
    if !tracing {
        // Keep the crash reports of the many shrinking replays out of the test log; the final,
        // traced replay keeps its standard error, backtrace included.
        let null = unsafe open("/dev/null", O_WRONLY)
        dup2(null, 1)
        dup2(null, 2)
    }
    let runner = ModelRunner(seed: seed, directory: directory)
    runner.tracing = tracing
    var generator = ModelGenerator(random: ModelRandom(seed: seed))
    let count = replay?.count ?? steps
    var emitted = false
    if tracing {
        runner.emit = { line in send(output, 1, Array(line.utf8)) }
    }
    do {
        try runner.checkAll(fullMaps: true)
        for index in 0..<count {
            let op = replay?[index] ?? generator.next(runner)
            var bytes: [UInt8] = []
            for value in op.encoded {
                for byte in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * byte))) }
            }
            send(output, 0, bytes)
            runner.step = index + 1
            try runner.apply(op)
            // Every step checks the files, the counter and the handles the step used; every
            // eighth step (and every truncation) checks all handles, every 32nd the whole maps.
            let everything = index % 8 == 7 || op.kind == .truncate || replay != nil
            try runner.checkAll(fullMaps: index % 32 == 31, only: everything ? nil : [op.id, op.y])
        }
        runner.finish()
        let leaked = _MmapDiagnostics.liveMappings - runner.baseline
        if leaked != 0 { throw ModelFailure("\(leaked) mappings are still live after every handle ended") }
    } catch {
        emitted = true
        send(output, 1, Array("step \(runner.step): \(runner.lastNote): \(error)".utf8))
    }
    _exit(emitted ? 1 : 0)
}

// MARK: - Shrinking

/// Shrinks a failing run by delta debugging (drop chunks, then single steps, replaying each
/// candidate in a child and keeping it when it fails the same way), then describes the shortest
/// failing sequence step by step.
func shrinkAndDescribe(seed: UInt64, run: ChildRun) -> String {
    let signature = run.signature
    var budget = 3000
    func fails(_ candidate: [ModelOp]) -> Bool {
        budget -= 1
        let result = runInChild(seed: seed, steps: 0, replay: candidate, tracing: false)
        return result.failed && result.signature == signature
    }
    var current = run.ops
    var chunks = 2
    while current.count >= 2 && budget > 0 {
        let size = (current.count + chunks - 1) / chunks
        var reduced = false
        var start = 0
        while start < current.count && budget > 0 {
            var candidate = current
            candidate.removeSubrange(start..<min(current.count, start + size))
            if !candidate.isEmpty && fails(candidate) {
                current = candidate
                reduced = true
            } else {
                start += size
            }
        }
        if reduced {
            chunks = max(chunks - 1, 2)
        } else if size == 1 {
            break
        } else {
            chunks = min(chunks * 2, current.count)
        }
    }
    let final = runInChild(seed: seed, steps: 0, replay: current, tracing: true)
    var lines = [
        "model sequence failed: seed \(seed) (MMAPKIT_MODEL_SEED=\(seed)), shrunk from \(run.ops.count) "
            + "to \(current.count) steps:"
    ]
    lines += final.texts
    if final.signal != 0 { lines.append("   -> the process died with \(signalName(final.signal))") }
    lines.append("steps as values: " + current.map { "\($0.encoded)" }.joined(separator: ", "))
    let report = lines.joined(separator: "\n")
    print(report)
    return report
}
