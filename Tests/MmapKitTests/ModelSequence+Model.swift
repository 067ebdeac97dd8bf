import Glibc
import MmapKit

// The reference model of the model-based sequence test (ModelSequenceTests.swift): the byte
// contents of every file, and for every live handle what each of its pages must read.

let modelPage = Int(sysconf(Int32(_SC_PAGESIZE)))

/// A failure of the library against the model (or of the model's own bookkeeping).
struct ModelFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Operations

/// One step of a sequence: a kind and a few raw integers, resolved against the state when the
/// step runs (so a step still means something after shrinking removed the steps before it).
struct ModelOp: Equatable, Sendable {
    enum Kind: Int, CaseIterable, Sendable {
        case mapFile, mapAnonymous, write, flush, advise, adviseDestructively, lock, remap, grow
        case makeReadOnly, makeMutable, share, split, restrict, drop, unmap
        case reserve, commit, decommit, growable, growableGrow, truncate
        case populate  // last: encoded steps of older seeds keep their meaning
    }
    var kind: Kind
    var id = 0
    var x = 0
    var y = 0
    var z = 0
    var w = 0
    var v = 0

    var encoded: [Int64] { [kind.rawValue, id, x, y, z, w, v].map { Int64($0) } }

    init(_ kind: Kind, id: Int = 0, x: Int = 0, y: Int = 0, z: Int = 0, w: Int = 0, v: Int = 0) {
        self.kind = kind
        self.id = id
        self.x = x
        self.y = y
        self.z = z
        self.w = w
        self.v = v
    }

    init?(encoded: [Int64]) {
        guard encoded.count == 7, let kind = Kind(rawValue: Int(encoded[0])) else { return nil }
        self.init(
            kind,
            id: Int(encoded[1]),
            x: Int(encoded[2]),
            y: Int(encoded[3]),
            z: Int(encoded[4]),
            w: Int(encoded[5]),
            v: Int(encoded[6])
        )
    }
}

// MARK: - Pages

/// What backs one page of a mapping or a reservation.
enum PageKind: Equatable {
    /// Not committed (reservations only): PROT_NONE.
    case none
    case anonymous(shared: Bool)
    /// `offset` is the file offset of the page's first byte.
    case file(Int, offset: Int, shared: Bool)
}

/// One page: its backing and, for anonymous and private file pages, its bytes when the model
/// knows them (nil: unknown, e.g. a private file page not yet written by its handle, which may
/// or may not reflect later changes of the file, or a page after MADV_FREE).
struct PageModel {
    var kind: PageKind
    var content: [UInt8]?
}

/// What reading a page must give.
enum PageExpectation {
    /// The page is past the end of the file: a guarded access faults.
    case fault
    /// The first `bytes.count` bytes of the page are known; the rest (the tail of the file's last
    /// page, or nothing) may hold anything.
    case known(ArraySlice<UInt8>)
    /// Readable, contents not modelled.
    case unknown
    /// Not mapped (an uncommitted page of a reservation).
    case inaccessible
}

/// One mapping made by `Mmap`/`MutableMmap` (and later owned by views).
final class MappingModel {
    var pages: [PageModel]
    var slack: Int
    var count: Int
    var address: UInt
    var writable: Bool
    /// A shared file mapping made from a read-only descriptor cannot become writable.
    var descriptorWritable: Bool
    let file: Int?
    /// The file offset of the first byte the user asked for (0 for anonymous memory).
    let fileOffset: Int
    let shared: Bool
    /// Part of it was advised or locked (its VMA may be split).
    var split = false
    /// The model's count of handles (the owner or the views) holding it.
    var holders = 1

    init(
        pages: [PageModel],
        slack: Int,
        count: Int,
        address: UInt,
        writable: Bool,
        descriptorWritable: Bool,
        file: Int?,
        fileOffset: Int,
        shared: Bool
    ) {
        self.pages = pages
        self.slack = slack
        self.count = count
        self.address = address
        self.writable = writable
        self.descriptorWritable = descriptorWritable
        self.file = file
        self.fileOffset = fileOffset
        self.shared = shared
    }

    var mappedLength: Int { pages.count * modelPage }
    var isEmpty: Bool { pages.isEmpty }

    /// The kind of a page appended at index `index` by growth.
    func pageKind(at index: Int) -> PageKind {
        if let file { return .file(file, offset: fileOffset - slack + index * modelPage, shared: shared) }
        return .anonymous(shared: shared)
    }

    /// A fresh page at `index`: zeros for anonymous memory, unknown for a private file page.
    func freshPage(at index: Int) -> PageModel {
        let kind = pageKind(at: index)
        if case .anonymous = kind { return PageModel(kind: kind, content: [UInt8](repeating: 0, count: modelPage)) }
        return PageModel(kind: kind, content: nil)
    }
}

/// A reservation, or the reservation behind an `MmapGrowableFile`.
final class ReservationModel {
    var pages: [PageModel]
    let address: UInt
    /// For a growable file: its file and mapped count.
    var growableFile: Int?
    var growableCount = 0

    init(pages: Int, address: UInt) {
        self.pages = Array(repeating: PageModel(kind: .none, content: nil), count: pages)
        self.address = address
    }

    var count: Int { pages.count * modelPage }
}

/// A file of the model: its bytes, and the descriptors the test uses.
struct FileModel {
    var bytes: [UInt8]
    let path: String
    let readWrite: CInt
    let readOnly: CInt
    /// A separate descriptor for pread and outside truncation.
    let outside: CInt
}

// MARK: - Handles

/// A live handle of the sequence. Exactly one of the optionals holds a value.
final class Slot {
    let id: Int
    var map: Mmap? = nil
    var mutableMap: MutableMmap? = nil
    var view: MmapView? = nil
    var mutableView: MutableMmapView? = nil
    var reservation: MmapReservation? = nil
    var growable: MmapGrowableFile? = nil
    /// For maps and views: the mapping and the window (user offsets of the mapping).
    var mapping: MappingModel? = nil
    var window: Range<Int> = 0..<0
    /// For reservations and growable files.
    var reserved: ReservationModel? = nil

    init(id: Int) { self.id = id }

    var isDirect: Bool { map != nil || mutableMap != nil }
    var isView: Bool { view != nil || mutableView != nil }
    var isWritable: Bool { mutableMap != nil || mutableView != nil }
    var name: String {
        if map != nil { return "Mmap#\(id)" }
        if mutableMap != nil { return "MutableMmap#\(id)" }
        if view != nil { return "MmapView#\(id)" }
        if mutableView != nil { return "MutableMmapView#\(id)" }
        if reservation != nil { return "MmapReservation#\(id)" }
        if growable != nil { return "MmapGrowableFile#\(id)" }
        return "#\(id)"
    }
}

// MARK: - Small helpers

func alignDown(_ value: Int) -> Int { value / modelPage * modelPage }
func alignUp(_ value: Int) -> Int { (value + modelPage - 1) / modelPage * modelPage }

/// SplitMix64: a small deterministic generator.
struct ModelRandom {
    var state: UInt64
    /// Bytes that drive the choices instead of the seed (the libFuzzer target's input).
    var tape: [UInt8] = []
    var position = 0
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    init(tape: [UInt8]) {
        state = 0
        self.tape = tape
    }
    /// Whether a tape is set and fully read.
    var isAtEnd: Bool { !tape.isEmpty && position >= tape.count }
    mutating func next() -> UInt64 {
        if !tape.isEmpty {
            // Two bytes per choice, so each byte the fuzzer mutates moves one decision.
            var value: UInt64 = 0
            for shift in [0, 8] where position < tape.count {
                value |= UInt64(tape[position]) << UInt64(shift)
                position += 1
            }
            return value
        }
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { bound <= 1 ? 0 : Int(next() % UInt64(bound)) }
    mutating func raw() -> Int { Int(next() >> 2) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}

/// Bytes for a write: a function of the step's seed, never all equal to what was there.
func writeBytes(_ count: Int, seed: Int) -> [UInt8] {
    var random = ModelRandom(seed: UInt64(truncatingIfNeeded: seed))
    return (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next() | 1) }
}

/// Compares `actual` with `expected`, returning the first differing index.
func firstDifference(_ actual: ArraySlice<UInt8>, _ expected: ArraySlice<UInt8>) -> Int? {
    precondition(actual.count == expected.count)
    let same = unsafe actual.withUnsafeBytes { a in
        unsafe expected.withUnsafeBytes { e in
            unsafe a.count == 0 || memcmp(a.baseAddress!, e.baseAddress!, a.count) == 0
        }
    }
    if same { return nil }
    for i in 0..<actual.count where actual[actual.startIndex + i] != expected[expected.startIndex + i] {
        return i
    }
    return nil
}

/// Reads the whole file behind `fd` with pread(2).
func preadAll(_ fd: CInt) -> [UInt8] {
    var status = stat()
    precondition(unsafe fstat(fd, &status) == 0, "fstat failed")
    let size = Int(status.st_size)
    var result = [UInt8](repeating: 0, count: size)
    var done = 0
    while done < size {
        let n = unsafe result.withUnsafeMutableBytes {
            unsafe pread(fd, $0.baseAddress! + done, size - done, off_t(done))
        }
        precondition(n > 0, "pread failed")
        done += n
    }
    return result
}

/// One line of /proc/self/maps: the range and the first three permission letters.
struct MapsEntry {
    var start: UInt
    var end: UInt
    var permissions: String
}

/// Parses /proc/self/maps (read in small chunks, so the read itself maps nothing new).
func readProcMaps() -> [MapsEntry] {
    let fd = unsafe open("/proc/self/maps", O_RDONLY | O_CLOEXEC)
    precondition(fd >= 0)
    defer { close(fd) }
    var text: [UInt8] = []
    text.reserveCapacity(64 * 1024)
    var chunk = [UInt8](repeating: 0, count: 8192)
    while true {
        let n = unsafe chunk.withUnsafeMutableBytes { unsafe read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        text += chunk[0..<n]
    }
    text.append(0)
    var entries: [MapsEntry] = []
    // strtoul and memchr: a byte loop is too slow in debug builds for a check made this often.
    unsafe text.withUnsafeMutableBufferPointer { buffer in
        let base = unsafe UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
        let limit = unsafe base + (buffer.count - 1)
        var line = unsafe base
        while unsafe line < limit {
            var cursor: UnsafeMutablePointer<CChar>? = nil
            let start = unsafe strtoul(line, &cursor, 16)
            let end = unsafe strtoul(cursor! + 1, &cursor, 16)
            let letters = unsafe cursor! + 1
            let permissions = unsafe String(
                decoding: UnsafeRawBufferPointer(start: letters, count: 3),
                as: UTF8.self
            )
            entries.append(MapsEntry(start: start, end: end, permissions: permissions))
            guard let newline = unsafe memchr(letters, 0x0A, limit - letters) else { break }
            unsafe line = newline.assumingMemoryBound(to: CChar.self) + 1
        }
    }
    return entries
}

/// The permissions of the page at `address` in `entries` (sorted), or nil when unmapped.
func permissions(at address: UInt, in entries: [MapsEntry]) -> String? {
    var low = 0
    var high = entries.count
    while low < high {
        let middle = (low + high) / 2
        if entries[middle].end <= address { low = middle + 1 } else { high = middle }
    }
    guard low < entries.count, entries[low].start <= address else { return nil }
    return entries[low].permissions
}

/// Guarded copy of `length` bytes at `address`, through the shim (for reading pages back after a
/// write): the bytes, or the offset of the faulting byte.
func shimGuardedRead(_ address: UInt, _ length: Int) -> Result<[UInt8], ModelFailure> {
    var result = [UInt8](repeating: 0, count: length)
    let fault = unsafe result.withUnsafeMutableBytes {
        unsafe _MmapDiagnostics.guardedCopy(from: UnsafeRawPointer(bitPattern: address)!, into: $0)
    }
    guard let fault else { return .success(result) }
    return .failure(ModelFailure("fault at +\(fault - address)"))
}

// MARK: - Borrowing accessors
// A noncopyable value in a class's optional property can be borrowed as an argument, but not
// through every member access; these helpers take it as an argument.

func reservationBase(_ reservation: borrowing MmapReservation) -> UInt { reservation.baseAddress }
func reservationCount(_ reservation: borrowing MmapReservation) -> Int { reservation.count }
func reservationCommitted(_ reservation: borrowing MmapReservation) -> [Range<Int>] { reservation.committedRanges }
func reservationMutableCount(_ reservation: inout MmapReservation, _ range: Range<Int>) throws(MmapError) -> Int {
    let span = try reservation.mutableBytes(in: range)
    return span.byteCount
}
/// `length` bytes at `offset` through a handle's public guarded read (reservations and growable
/// files too): the bytes, or the error.
func publicGuardedRead<H: MmapBytes & ~Copyable>(
    _ handle: borrowing H,
    _ offset: Int,
    _ length: Int
) -> Result<[UInt8], MmapError> {
    do throws(MmapError) {
        return .success(try handle.guardedBytes(offset..<(offset + length)))
    } catch {
        return .failure(error)
    }
}

/// `bytes` stored at `offset` through a handle's public guarded array store; nil, or the error.
func publicGuardedWrite<H: MutableMmapBytes & ~Copyable>(
    _ handle: inout H,
    _ offset: Int,
    _ bytes: [UInt8]
) -> MmapError? {
    do throws(MmapError) {
        try handle.guardedStoreBytes(bytes, toByteOffset: offset)
        return nil
    } catch {
        return error
    }
}

func growableBase(_ growable: borrowing MmapGrowableFile) -> UInt { growable.baseAddress }
func growableCount(_ growable: borrowing MmapGrowableFile) -> Int { growable.count }
func startAddress<H: MmapBytes & ~Copyable>(_ handle: borrowing H) -> UInt {
    unsafe handle.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
}
func handleCount<H: MmapBytes & ~Copyable>(_ handle: borrowing H) -> Int { handle.count }
