// The libFuzzer target: the fuzzer's bytes drive the model-based sequence test's generator
// (Tests/MmapKitTests/ModelSequence+*.swift, linked here), so the fuzzer explores the same
// operations on files, anonymous memory, views, reservations and growable files, and every step
// is checked against the same byte-level model: file contents (pread), what every live handle
// reads (guarded), the live-mapping counter and /proc/self/maps. A disagreement, a trap or an
// unguarded SIGBUS is a crash that libFuzzer saves with the input that caused it.
import Glibc
import MmapKit

let directory: String = {
    var template = Array("/tmp/mmapkit-fuzz-XXXXXX".utf8CString)
    let result = unsafe template.withUnsafeMutableBufferPointer { unsafe mkdtemp($0.baseAddress!) }
    precondition(unsafe result != nil, "mkdtemp failed")
    return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
}()

/// libFuzzer's entry point: runs one input as a sequence of at most 64 model steps.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard count > 0, let start = unsafe start else { return 0 }
    let tape = unsafe [UInt8](UnsafeRawBufferPointer(start: start, count: count))
    let runner = ModelRunner(seed: UInt64(tape[0]), directory: directory)
    runner.tracing = true
    var generator = ModelGenerator(random: ModelRandom(tape: Array(tape.dropFirst())))
    var steps = 0
    do {
        try runner.checkAll(fullMaps: true)
        while !generator.random.isAtEnd && steps < 64 {
            let op = generator.next(runner)
            steps += 1
            runner.step = steps
            try runner.apply(op)
            try runner.checkAll(fullMaps: steps % 8 == 0, only: steps % 4 == 0 ? nil : [op.id, op.y])
        }
        try runner.checkAll(fullMaps: true)
        runner.finish()
        let leaked = _MmapDiagnostics.liveMappings - runner.baseline
        if leaked != 0 { throw ModelFailure("\(leaked) mappings are still live after every handle ended") }
    } catch {
        fatalError("model disagreement at step \(runner.step) (\(runner.lastNote)): \(error)")
    }
    return 0
}
