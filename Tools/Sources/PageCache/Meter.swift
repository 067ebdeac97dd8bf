import CPageCache
import Glibc

/// The page-cache state of one file (or of the chosen byte range of it).
struct PageCounts {
    /// Pages in the measured range.
    var pages = 0
    /// Resident pages; meaningless when `hidden`.
    var resident = 0
    /// From cachestat(2) only: dirty, under writeback, evicted and recently evicted pages.
    var dirty: Int? = nil
    var writeback: Int? = nil
    var evicted: Int? = nil
    var recentlyEvicted: Int? = nil
    /// The kernel does not tell this caller: cachestat refuses (EPERM) and mincore would
    /// report every page resident, for files the caller can neither write nor owns.
    var hidden = false
    /// One character per bar cell ('#' all resident, 'o' some, '.' none), with `-v`.
    var bar: String? = nil
}

/// Measures residency with cachestat(2) where the kernel has it (Linux 6.5+), otherwise with
/// mmap + mincore(2) in 1 GiB windows through one reused vector.
///
/// This calls mincore and cachestat directly rather than through `Mmap.residency(range:)`,
/// which allocates a fresh vector per call: a tree walk measures tens of thousands of files.
final class Meter {
    let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    private(set) var cachestatAvailable: Bool
    private var vector: [UInt8] = []
    static let window = 1 << 30
    /// The largest range measured with mincore: the x86_64 user address space.
    static let mincoreLimit = 1 << 47
    private let euid = geteuid()

    init(forceMincore: Bool) {
        cachestatAvailable = !forceMincore
    }

    /// Result of a measurement.
    enum Outcome {
        case measured(PageCounts)
        /// mmap refused with ENODEV: a file on a filesystem without page cache.
        case noPageCache
        case failed(String)
    }

    /// Measures `range` (bytes, already clipped to the file) of the open file `fd`.
    func measure(fd: CInt, stat st: stat, range: Range<Int>, barWidth: Int? = nil) -> Outcome {
        var counts = PageCounts()
        guard !range.isEmpty else { return .measured(counts) }
        let first = range.lowerBound / pageSize
        // Rounded up without overflow: a sparse file may be nearly Int.max bytes long.
        let end = range.upperBound / pageSize + (range.upperBound % pageSize == 0 ? 0 : 1)
        counts.pages = max(0, end - first)
        guard counts.pages > 0 else { return .measured(counts) }
        let offset = first * pageSize
        let length = range.upperBound - offset
        if cachestatAvailable && barWidth == nil {
            var raw = CPageCache_cachestat_counts()
            let result = CPageCache_cachestat(fd, UInt64(offset), UInt64(length), &raw)
            switch result {
            case 0:
                counts.resident = Int(raw.cache)
                counts.dirty = Int(raw.dirty)
                counts.writeback = Int(raw.writeback)
                counts.evicted = Int(raw.evicted)
                counts.recentlyEvicted = Int(raw.recentlyEvicted)
                return .measured(counts)
            case EPERM:
                counts.hidden = true
                return .measured(counts)
            case ENOSYS:
                cachestatAvailable = false
            default:
                break  // fall back to mincore for this file
            }
        }
        if length > Self.mincoreLimit {
            // A 1 GiB window at a time, this would take hours (vmtouch skips such files too).
            return .failed(
                "cannot be measured with mincore: the range is \(length) bytes, more than \(Self.mincoreLimit) (128 TiB)"
            )
        }
        if !mincoreIsTruthful(st) {
            counts.hidden = true
            return .measured(counts)
        }
        // One cell per page when there are fewer pages than cells, as vmtouch draws small files.
        let cellCount = barWidth.map { min($0, counts.pages) }
        var cells = cellCount.map { [Int](repeating: 0, count: $0) }
        var cellPages = cellCount.map { [Int](repeating: 0, count: $0) }
        var start = offset
        while start < range.upperBound {
            let count = min(Self.window, range.upperBound - start)
            guard let base = mmap(nil, count, PROT_READ, MAP_SHARED, fd, off_t(start)), base != MAP_FAILED else {
                let code = errno
                if code == ENODEV { return .noPageCache }
                return .failed("mmap: \(errnoText(code))")
            }
            let windowPages = (count + pageSize - 1) / pageSize
            if vector.count < windowPages { vector = [UInt8](repeating: 0, count: windowPages) }
            let status = vector.withUnsafeMutableBufferPointer { mincore(base, count, $0.baseAddress) }
            let code = errno
            munmap(base, count)
            if status != 0 { return .failed("mincore: \(errnoText(code))") }
            vector.withUnsafeBufferPointer { buffer in
                var resident = 0
                for index in 0..<windowPages { resident &+= Int(buffer[index] & 1) }
                counts.resident += resident
                if let width = cellCount {
                    let firstPage = (start - offset) / pageSize
                    for index in 0..<windowPages {
                        let cell = min(width - 1, (firstPage + index) * width / counts.pages)
                        cellPages![cell] += 1
                        cells![cell] += Int(buffer[index] & 1)
                    }
                }
            }
            start += count
        }
        if let cells, let cellPages {
            counts.bar = String(
                zip(cells, cellPages).map { resident, total in
                    total == 0 ? " " : resident == total ? "#" : resident == 0 ? "." : "o"
                }
            )
        }
        return .measured(counts)
    }

    /// mincore(2) reports every page of a file resident unless the caller owns it, may write it,
    /// or is privileged (Linux 5.2+, to close a side channel).
    private func mincoreIsTruthful(_ st: stat) -> Bool {
        if euid == 0 || st.st_uid == euid { return true }
        if st.st_mode & S_IWOTH != 0 { return true }
        if st.st_mode & S_IWGRP != 0 {
            var groups = [gid_t](repeating: 0, count: 256)
            let count = getgroups(Int32(groups.count), &groups)
            return st.st_gid == getegid() || (count > 0 && groups[0..<Int(count)].contains(st.st_gid))
        }
        return false
    }
}

/// A byte range from `-p`: `START-END`, `START-`, `-END` or `LENGTH` (from 0), with K/M/G.
struct ByteRange {
    var start = 0
    var end: Int? = nil

    init() {}

    init?(_ text: String) {
        if let dash = text.firstIndex(of: "-") {
            let head = text[..<dash]
            let tail = text[text.index(after: dash)...]
            if !head.isEmpty {
                guard let value = parseByteCount(String(head)) else { return nil }
                start = value
            }
            if !tail.isEmpty {
                guard let value = parseByteCount(String(tail)) else { return nil }
                end = value
            }
        } else {
            guard let value = parseByteCount(text) else { return nil }
            end = value
        }
        if let end, end < start { return nil }
    }

    /// The range within a file of `size` bytes.
    func clipped(to size: Int) -> Range<Int> {
        let lower = min(start, size)
        return lower..<max(lower, min(end ?? size, size))
    }
}

/// "64M" → 67108864; plain numbers are bytes; K, M, G, T (either case) are powers of 1024; 0
/// is allowed, and so is a decimal fraction, as vmtouch allows it ("1.5M" → 1572864, rounded
/// down to a whole byte). A `switch`, not a dictionary of units: no table is built at run time.
func parseByteCount(_ text: String) -> Int? {
    var number = Substring(text)
    let unit: Int
    switch number.last {
    case "K", "k": unit = 1 << 10
    case "M", "m": unit = 1 << 20
    case "G", "g": unit = 1 << 30
    case "T", "t": unit = 1 << 40
    default: unit = 1
    }
    if unit != 1 { number = number.dropLast() }
    var dots = 0
    for byte in number.utf8 {
        if byte == UInt8(ascii: ".") {
            dots += 1
        } else if byte < UInt8(ascii: "0") || byte > UInt8(ascii: "9") {
            return nil
        }
    }
    guard dots <= 1, number.utf8.contains(where: { $0 != UInt8(ascii: ".") }) else { return nil }
    if dots == 0 {
        guard let value = Int(number) else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: unit)
        return overflow ? nil : bytes
    }
    guard let value = Double(String(number)) else { return nil }
    let bytes = (value * Double(unit)).rounded(.down)
    return bytes < 0x1p62 ? Int(bytes) : nil
}
