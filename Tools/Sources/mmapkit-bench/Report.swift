import Foundation

/// One row of the report.
struct ReportRow: Codable {
    let workload: String
    let implementation: String
    let medianSeconds: Double
    let minSeconds: Double
    let maxSeconds: Double
    let throughputGBps: Double
    let ratio: Double
    let ratioMin: Double
    let ratioMax: Double
    let checksumsAgree: Bool
    let repetitions: Int

    init(_ series: Series) {
        workload = series.workload
        implementation = series.implementation
        medianSeconds = median(series.seconds)
        minSeconds = series.seconds.min() ?? .nan
        maxSeconds = series.seconds.max() ?? .nan
        throughputGBps = Double(series.bytes) / medianSeconds / 1e9
        ratio = median(series.ratios)
        ratioMin = series.ratios.min() ?? .nan
        ratioMax = series.ratios.max() ?? .nan
        checksumsAgree = series.checksumsAgree
        repetitions = series.seconds.count
    }
}

/// The whole report, as printed in JSON.
struct Report: Codable {
    let machine: MachineInfo
    let rows: [ReportRow]
}

enum OutputFormat: String, CaseIterable {
    case table, json, csv
}

func render(_ report: Report, as format: OutputFormat) -> String {
    switch format {
    case .json:
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try! encoder.encode(report), as: UTF8.self)
    case .csv:
        var lines = [
            "workload,implementation,median_s,min_s,max_s,throughput_gbps,ratio,ratio_min,ratio_max,checksum_ok,repetitions"
        ]
        for row in report.rows {
            lines.append(
                [
                    row.workload, row.implementation, fixed(row.medianSeconds, 6), fixed(row.minSeconds, 6),
                    fixed(row.maxSeconds, 6), fixed(row.throughputGBps, 3), fixed(row.ratio, 3), fixed(row.ratioMin, 3),
                    fixed(row.ratioMax, 3), row.checksumsAgree ? "ok" : "MISMATCH", String(row.repetitions),
                ].joined(separator: ",")
            )
        }
        return lines.joined(separator: "\n")
    case .table:
        let m = report.machine
        var lines = [
            "machine: \(m.cores) cores, Linux \(m.kernel), THP \(m.transparentHugePages), \(m.date)",
            "command: \(m.command)",
            "ratio = median over repetitions of (time / baseline time in the same repetition); lower is faster",
            "",
        ]
        let header = [
            "workload", "implementation", "median s", "min–max s", "throughput", "ratio (min–max)", "checksum",
        ]
        var table = [header]
        for row in report.rows {
            table.append([
                row.workload,
                row.implementation,
                fixed(row.medianSeconds, 4),
                "\(fixed(row.minSeconds, 4))–\(fixed(row.maxSeconds, 4))",
                "\(fixed(row.throughputGBps, 2)) GB/s",
                "\(fixed(row.ratio, 3)) (\(fixed(row.ratioMin, 2))–\(fixed(row.ratioMax, 2)))",
                row.checksumsAgree ? "ok" : "MISMATCH",
            ])
        }
        let widths = header.indices.map { column in table.map { $0[column].count }.max()! }
        for (index, cells) in table.enumerated() {
            lines.append(
                cells.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                    .joined(separator: "  ")
            )
            if index == 0 { lines.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
        }
        return lines.joined(separator: "\n")
    }
}

func fixed(_ value: Double, _ digits: Int) -> String {
    value.isFinite ? String(format: "%.\(digits)f", value) : "-"
}
