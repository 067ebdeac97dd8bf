import Foundation
import Glibc
import MmapKit

/// A regular, non-empty file to work on, or the reason a path is not one.
enum Target {
    case file(path: String, size: Int)
    case skipped(path: String, reason: String)
    case failed(path: String, reason: String)
}

/// Expands the command-line paths into targets: directories only with `recursive`, and every
/// kind of non-regular file reported with one clear reason.
func expandTargets(_ paths: [String], recursive: Bool) -> [Target] {
    var targets: [Target] = []
    for path in paths { collect(path, recursive: recursive, into: &targets) }
    return targets
}

private func collect(_ path: String, recursive: Bool, into targets: inout [Target]) {
    var st = stat()
    guard lstat(path, &st) == 0 else {
        targets.append(.failed(path: path, reason: String(cString: strerror(errno))))
        return
    }
    switch st.st_mode & S_IFMT {
    case S_IFREG:
        if st.st_size == 0 {
            let reason =
                path.hasPrefix("/proc/") || path.hasPrefix("/sys/")
                ? "reports size 0 (a /proc or /sys file is generated on read and has no page cache)"
                : "empty file, no pages"
            targets.append(.skipped(path: path, reason: reason))
        } else if access(path, R_OK) != 0 {
            targets.append(.failed(path: path, reason: String(cString: strerror(errno))))
        } else {
            targets.append(.file(path: path, size: Int(st.st_size)))
        }
    case S_IFDIR:
        guard recursive else {
            targets.append(.failed(path: path, reason: "is a directory (use -r to recurse)"))
            return
        }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: path) else {
            targets.append(.failed(path: path, reason: "cannot read the directory"))
            return
        }
        for entry in entries.sorted() {
            collect(path == "/" ? "/" + entry : path + "/" + entry, recursive: true, into: &targets)
        }
    case S_IFLNK:
        // Follow a link given on the command line or met while recursing, unless it is a directory
        // (which could loop).
        var target = stat()
        if stat(path, &target) == 0 && target.st_mode & S_IFMT == S_IFDIR {
            targets.append(.skipped(path: path, reason: "symbolic link to a directory, not followed"))
        } else if stat(path, &target) != 0 {
            targets.append(.failed(path: path, reason: "dangling symbolic link"))
        } else {
            var resolved = [CChar](repeating: 0, count: Int(PATH_MAX))
            if realpath(path, &resolved) != nil {
                let real = String(decoding: resolved.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                let before = targets.count
                collect(real, recursive: false, into: &targets)
                // Report under the name the user gave.
                for index in before..<targets.count { targets[index] = targets[index].renamed(path) }
            } else {
                targets.append(.failed(path: path, reason: String(cString: strerror(errno))))
            }
        }
    case S_IFIFO: targets.append(.failed(path: path, reason: "is a FIFO, which has no page cache"))
    case S_IFSOCK: targets.append(.failed(path: path, reason: "is a socket, which has no page cache"))
    case S_IFCHR: targets.append(.failed(path: path, reason: "is a character device, which has no page cache"))
    case S_IFBLK: targets.append(.failed(path: path, reason: "is a block device; pass a file on it instead"))
    default: targets.append(.failed(path: path, reason: "is not a regular file"))
    }
}

extension Target {
    func renamed(_ name: String) -> Target {
        switch self {
        case .file(_, let size): return .file(path: name, size: size)
        case .skipped(_, let reason): return .skipped(path: name, reason: reason)
        case .failed(_, let reason): return .failed(path: name, reason: reason)
        }
    }
}

/// The residency of one file, read in windows of 1 GiB so that a huge file needs at most
/// 256 KiB of `mincore` vector at a time; `bar` summarises it in `width` cells.
struct FileResidency: Codable {
    let path: String
    let bytes: Int
    let pages: Int
    let residentPages: Int
    let residentBytes: Int
    let percent: Double
    var bar: String? = nil
}

let residencyWindow = 1 << 30

func measureResidency(path: String, size: Int, barWidth: Int?) throws(MmapError) -> FileResidency {
    let map = try Mmap(path: path)
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let pages = (size + page - 1) / page
    var resident = 0
    var cells = barWidth.map { [Int](repeating: 0, count: $0) }
    var cellPages = barWidth.map { width in [Int](repeating: 0, count: width) }
    var start = 0
    while start < size {
        let end = min(size, start + residencyWindow)
        let window = try map.residency(range: start..<end)
        resident += window.residentCount
        if let width = barWidth {
            let firstPage = start / page
            for index in 0..<window.pageCount {
                let cell = min(width - 1, (firstPage + index) * width / max(pages, 1))
                cellPages![cell] += 1
                if window.isResident(page: index) { cells![cell] += 1 }
            }
        }
        start = end
    }
    var bar: String? = nil
    if let cells, let cellPages {
        bar = String(
            zip(cells, cellPages).map { resident, total in
                total == 0 ? " " : resident == total ? "#" : resident == 0 ? "." : "o"
            }
        )
    }
    return FileResidency(
        path: path,
        bytes: size,
        pages: pages,
        residentPages: resident,
        residentBytes: min(resident * page, size),
        percent: pages == 0 ? 100 : Double(resident) * 100 / Double(pages),
        bar: bar
    )
}

/// A failure or a skip, for the JSON report.
struct PathProblem: Codable {
    let path: String
    let message: String
}

/// Prints `value` as pretty JSON with sorted keys.
func printJSON<T: Encodable>(_ value: T) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try! encoder.encode(value), as: UTF8.self))
}

/// "1.5 GiB", "12.0 KiB", "512 B".
func humanBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}
