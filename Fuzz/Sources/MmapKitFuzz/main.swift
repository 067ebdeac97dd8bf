// Decodes a byte string into a sequence of operations on files, mappings and views, runs them,
// and checks MmapKit's invariants after every step:
//   - the live-mapping counter equals the number of mappings this harness holds;
//   - a guarded read of a shared file mapping returns what pread(2) returns, or throws `fault`
//     exactly when the page lies wholly past the end of the file, or `outOfBounds` exactly when
//     the request is outside the mapping;
//   - no operation crashes, and every error is an MmapError with a message.
// At the end of each input everything is dropped and the counter must be back at its baseline.
import Glibc
import MmapKit

/// Reads little-endian integers from the input, returning 0 once it is exhausted.
struct Input {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    var isAtEnd: Bool { position >= bytes.count }

    mutating func byte() -> Int {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return Int(bytes[position])
    }

    mutating func u16() -> Int { byte() | byte() << 8 }

    /// A size or offset: usually small (within a few pages), sometimes hostile.
    mutating func size(_ page: Int) -> Int {
        switch byte() % 8 {
        case 0: return -u16()
        case 1: return Int.max - u16()
        case 2: return u16() * page
        default: return u16() % (20 * page)
        }
    }
}

let page = Int(sysconf(Int32(_SC_PAGESIZE)))
let path = "/tmp/mmapkit-fuzz-\(getpid())"
nonisolated(unsafe) var fd: CInt = -1

func fileSize() -> Int {
    var st = stat()
    precondition(fstat(fd, &st) == 0)
    return Int(st.st_size)
}

/// The harness's holdings. Mappings are noncopyable, so each slot is an Optional.
struct State: ~Copyable {
    var shared: MutableMmap? = nil  // a shared file mapping
    var sharedOffset = 0
    var readOnly: Mmap? = nil  // a private or shared read-only mapping
    var anonymous: MutableMmap? = nil
    var head: MutableMmapView? = nil
    var tail: MutableMmapView? = nil
    var viewsOwnAMapping = false

    /// Mappings held, as the live-mapping counter should see them: a slot holds one when it is
    /// occupied and its mapping is non-empty; the views hold one while either is alive.
    mutating func heldMappings() -> Int {
        var held = 0
        if let map = shared.take() {
            if map.count > 0 { held += 1 }
            shared = consume map
        }
        if let map = readOnly.take() {
            if map.count > 0 { held += 1 }
            readOnly = consume map
        }
        if let map = anonymous.take() {
            if map.count > 0 { held += 1 }
            anonymous = consume map
        }
        var viewsAlive = false
        if let view = head.take() {
            viewsAlive = true
            head = consume view
        }
        if let view = tail.take() {
            viewsAlive = true
            tail = consume view
        }
        return held + (viewsOwnAMapping && viewsAlive ? 1 : 0)
    }

    /// The number of views held.
    mutating func heldViews() -> Int {
        var count = 0
        if let view = head.take() {
            count += 1
            head = consume view
        }
        if let view = tail.take() {
            count += 1
            tail = consume view
        }
        return count
    }
}

/// Checks a guarded read of `count` bytes at `offset` of the shared mapping against pread.
func checkGuardedRead(_ map: borrowing MutableMmap, mapOffset: Int, offset: Int, count: Int) {
    let size = fileSize()
    let (end, overflow) = offset.addingReportingOverflow(count)
    guard !overflow else { return }  // no Range can describe it; the matrix covers Int.max ranges
    do throws(MmapError) {
        let bytes = try map.guardedBytes(offset..<end)
        var expected = [UInt8](repeating: 0, count: count)
        let n = expected.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(mapOffset + offset)) }
        precondition(n >= 0)
        // Bytes the file holds must agree; bytes past its end (in its last page) are not compared.
        for i in 0..<min(n, count) where mapOffset + offset + i < size {
            precondition(bytes[i] == expected[i], "guarded read disagrees with pread at \(offset + i)")
        }
        // A read that succeeded must not have touched a page wholly past the end of the file.
        let lastPage = (mapOffset + offset + count - 1) / page * page
        precondition(count == 0 || lastPage < max(size, 1) || lastPage < ((size + page - 1) / page) * page)
    } catch {
        switch error.code {
        case .outOfBounds:
            precondition(offset < 0 || count < 0 || offset > map.count || count > map.count - offset)
        case .fault:
            let faultAt = mapOffset + (error.faultOffset ?? -1)
            precondition(
                faultAt >= ((size + page - 1) / page) * page,
                "fault inside the file at \(faultAt), size \(size)"
            )
        default:
            preconditionFailure("unexpected error from a guarded read: \(error)")
        }
    }
}

func run(_ input: inout Input, _ state: inout State) {
    let op = input.byte() % 14
    do throws(MmapError) {
        switch op {
        case 0:  // resize the file
            _ = ftruncate(fd, off_t(input.u16() % (24 * page)))
        case 1:  // map the file shared, read-write
            let offset = input.size(page)
            let count = input.byte() % 2 == 0 ? nil : Optional(input.size(page))
            state.shared = nil
            state.shared = try MutableMmap(fileDescriptor: fd, offset: Int64(offset), count: count)
            state.sharedOffset = offset
        case 2:  // map the file read-only, shared or private, with options
            let sharing: MmapSharing = input.byte() % 2 == 0 ? .shared : .private
            let flags = input.byte()
            var options = MmapOptions()
            options.populate = flags & 1 != 0
            options.advice = flags & 2 != 0 ? .random : nil
            options.hugePages = flags & 4 != 0 ? .transparent : nil
            state.readOnly = nil
            state.readOnly = try Mmap(
                fileDescriptor: fd,
                offset: Int64(input.size(page)),
                count: nil,
                sharing: sharing,
                options: options
            )
        case 3:  // anonymous memory
            state.anonymous = nil
            state.anonymous = try MutableMmap(
                anonymous: input.size(page),
                sharing: input.byte() % 2 == 0 ? .private : .shared
            )
        case 4:  // guarded read of the shared mapping, checked against pread
            let offset = input.size(page)
            let count = input.u16() % (2 * page)
            if let map = state.shared.take() {
                checkGuardedRead(map, mapOffset: state.sharedOffset, offset: offset, count: count)
                state.shared = consume map
            }
        case 5:  // guarded write
            let offset = input.size(page)
            let value = UInt32(truncatingIfNeeded: input.u16())
            do throws(MmapError) { try state.shared?.guardedStore(value, toByteOffset: offset) } catch {
                precondition(error.code == .outOfBounds || error.code == .fault, "\(error)")
            }
        case 6:  // flush a range
            let start = input.size(page)
            let end = input.size(page)
            if start <= end { try state.shared?.flush(range: start..<end) }
        case 7:  // advise a range
            let start = input.size(page)
            let end = input.size(page)
            let advice = MmapAdvice.all[input.byte() % MmapAdvice.all.count]
            if start <= end { try state.readOnly?.advise(advice, range: start..<end) }
        case 8:  // destructive advice on anonymous memory
            let start = input.size(page)
            let end = input.size(page)
            if start <= end { try state.anonymous?.advise(.dontNeed, range: start..<end) }
        case 9:  // remap
            let count = input.size(page)
            let mayMove = input.byte() % 2 == 0
            let before = state.anonymous?.count
            do throws(MmapError) { try state.anonymous?.remap(count: count, mayMove: mayMove) } catch {
                precondition(state.anonymous?.count == before, "a failed remap changed the count")
                throw error
            }
        case 10:  // share the anonymous mapping and split it
            let at = input.size(page)
            let viewsFree = state.heldViews() == 0
            if viewsFree, let map = state.anonymous.take() {
                state.viewsOwnAMapping = map.count > 0
                var head = map.share()
                do throws(MmapError) { state.tail = try head.split(at: at) } catch {
                    precondition(error.code == .outOfBounds)
                }
                state.head = consume head
            }
        case 11:  // restrict the head view
            let start = input.size(page)
            let end = input.size(page)
            if start <= end { try state.head?.restrict(to: start..<end) }
        case 12:  // drop something
            switch input.byte() % 5 {
            case 0: state.shared = nil
            case 1: state.readOnly = nil
            case 2: state.anonymous = nil
            case 3: state.head = nil
            default: state.tail = nil
            }
        default:  // unmap explicitly, or read residency
            if var map = state.readOnly.take() {
                if input.byte() % 2 == 0 {
                    _ = try map.residency()
                    state.readOnly = consume map
                } else {
                    try map.unmap()
                }
            }
        }
    } catch {
        precondition(!error.message.isEmpty, "an MmapError without a message")
    }
}

/// libFuzzer's entry point: runs one input as a sequence of operations.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    if fd < 0 {
        fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        unlink(path)  // the descriptor keeps the file; nothing is left behind
        precondition(fd >= 0)
    }
    _ = ftruncate(fd, off_t(4 * page))
    let baseline = _MmapDiagnostics.liveMappings
    var input = Input(bytes: UnsafeRawBufferPointer(start: start, count: count))
    do {
        var state = State()
        var steps = 0
        while !input.isAtEnd && steps < 64 {
            run(&input, &state)
            let held = state.heldMappings()
            precondition(
                _MmapDiagnostics.liveMappings == baseline + held,
                "live mappings \(_MmapDiagnostics.liveMappings - baseline), held \(held)"
            )
            steps += 1
        }
    }
    precondition(_MmapDiagnostics.liveMappings == baseline, "a mapping leaked")
    return 0
}
