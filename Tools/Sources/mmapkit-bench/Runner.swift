import Foundation
import Glibc
import MmapKit

/// The timings of one implementation of one workload.
struct Series {
    let workload: String
    let implementation: String
    let bytes: Int
    var seconds: [Double] = []
    var ratios: [Double] = []  // against the workload's baseline, repetition by repetition
    var checksumsAgree = true
}

/// Runs every workload `repetitions` times, interleaving implementations repetition by
/// repetition (A B C, B C A, ...) so that drift on a noisy machine affects all alike.
func runWorkloads(
    _ workloads: [Workload],
    repetitions: Int,
    warm: () -> Void,
    progress: (String) -> Void
) throws -> [Series] {
    var series: [String: Series] = [:]
    func key(_ w: String, _ i: String) -> String { w + "\u{0}" + i }
    for workload in workloads {
        for implementation in workload.implementations {
            series[key(workload.name, implementation.name)] = Series(
                workload: workload.name,
                implementation: implementation.name,
                bytes: workload.bytes
            )
        }
    }
    // Repetition 0 is a discarded warm-up: the first run after memory was freed to the host pays
    // for faults and huge-page compaction that later runs do not.
    for repetition in 0...repetitions {
        for workload in workloads {
            warm()
            let count = workload.implementations.count
            var times: [String: Double] = [:]
            var checksums: [String: UInt64] = [:]
            for step in 0..<count {
                let implementation = workload.implementations[(step + repetition) % count]
                progress(
                    repetition == 0
                        ? "warm-up · \(workload.name) · \(implementation.name)"
                        : "repetition \(repetition)/\(repetitions) · \(workload.name) · \(implementation.name)"
                )
                workload.prepare()
                let clock = ContinuousClock()
                let start = clock.now
                let checksum = try implementation.run()
                let elapsed = clock.now - start
                workload.release()
                times[implementation.name] =
                    Double(elapsed.components.seconds)
                    + Double(elapsed.components.attoseconds) * 1e-18
                checksums[implementation.name] = checksum
            }
            let reference = checksums[workload.baseline]
            let baseline = times[workload.baseline] ?? .nan
            for implementation in workload.implementations {
                let name = implementation.name
                if checksums[name] != reference { series[key(workload.name, name)]!.checksumsAgree = false }
                guard repetition > 0 else { continue }
                series[key(workload.name, name)]!.seconds.append(times[name]!)
                series[key(workload.name, name)]!.ratios.append(times[name]! / baseline)
            }
        }
    }
    return workloads.flatMap { workload in
        workload.implementations.map { series[key(workload.name, $0.name)]! }
    }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// The machine, for the report header.
struct MachineInfo: Codable {
    let cores: Int
    let kernel: String
    let transparentHugePages: String
    let date: String
    let command: String

    static func current() -> MachineInfo {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let thp =
            (try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
        let formatter = ISO8601DateFormatter()
        return MachineInfo(
            cores: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
            kernel: release,
            transparentHugePages: thp,
            date: formatter.string(from: Date()),
            command: CommandLine.arguments.map { $0.split(separator: "/").last.map(String.init) ?? $0 }.first.map {
                ([$0] + CommandLine.arguments.dropFirst()).joined(separator: " ")
            } ?? "mmapkit"
        )
    }
}
