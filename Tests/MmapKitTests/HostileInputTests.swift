import Glibc
import MmapKit
import Testing

/// Files and descriptors the hostile-input rows use, created once.
final class HostileFixture: @unchecked Sendable {
    static let shared = HostileFixture()
    let directory = TemporaryDirectory()
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let size: Int
    let data: String
    let empty: String
    let fifo: String
    let readOnly: CInt
    let writeOnly: CInt
    let readWrite: CInt
    let directoryFD: CInt
    let socket: CInt
    let closed: CInt

    private init() {
        size = 3 * page + 100
        data = directory.makeFile("data", count: size)
        empty = directory.makeFile("empty", bytes: [])
        fifo = directory.file("fifo")
        precondition(unsafe mkfifo(fifo, 0o600) == 0)
        readOnly = openFile(data, O_RDONLY)
        writeOnly = openFile(data, O_WRONLY)
        readWrite = openFile(data, O_RDWR)
        directoryFD = openFile(directory.path, O_RDONLY | O_DIRECTORY)
        var pair: [CInt] = [0, 0]
        precondition(unsafe socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0, &pair) == 0)
        socket = pair[0]
        closed = openFile(data, O_RDONLY)
        close(closed)
    }
}

/// One row of the hostile-input matrix: an action and the outcome it must have.
struct HostileRow: Sendable, CustomTestStringConvertible {
    enum Outcome: Sendable {
        case success
        case failure(MmapError.Code, errno: CInt?)
    }
    let name: String
    let outcome: Outcome
    let run: @Sendable (HostileFixture) throws(MmapError) -> Void

    init(_ name: String, _ outcome: Outcome, _ run: @escaping @Sendable (HostileFixture) throws(MmapError) -> Void) {
        self.name = name
        self.outcome = outcome
        self.run = run
    }

    var testDescription: String { name }
}

private func fails(_ code: MmapError.Code, _ errno: CInt? = nil) -> HostileRow.Outcome {
    .failure(code, errno: errno)
}

/// Every constructor and range-taking API against bad input.
let hostileRows: [HostileRow] = [
    // Offsets and counts.
    HostileRow("negative offset", fails(.invalidArgument, 0)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.readOnly, offset: -1)
    },
    HostileRow("minimum offset", fails(.invalidArgument, 0)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.readOnly, offset: .min, count: 1)
    },
    HostileRow("negative count", fails(.invalidArgument, 0)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.readOnly, count: -1)
    },
    HostileRow("count Int.max", fails(.invalidArgument, 0)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.readOnly, count: .max)
    },
    HostileRow("count overflowing when rounded", fails(.invalidArgument, 0)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.readOnly, offset: 1, count: .max - 1)
    },
    HostileRow("offset + count overflowing Int64", fails(.invalidArgument, 0)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.readOnly, offset: .max - 5, count: 10)
    },
    HostileRow("offset Int64.max, count inferred", fails(.outOfBounds, 0)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.readOnly, offset: .max)
    },
    HostileRow("offset one past the end, count inferred", fails(.outOfBounds, 0)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.readOnly, offset: Int64(f.size + 1))
    },
    HostileRow("offset at the end: empty", .success) { f throws(MmapError) in
        let map = try Mmap(fileDescriptor: f.readOnly, offset: Int64(f.size))
        precondition(map.count == 0)
    },
    HostileRow("offset just below the end: one byte", .success) { f throws(MmapError) in
        let map = try Mmap(fileDescriptor: f.readOnly, offset: Int64(f.size - 1))
        precondition(map.count == 1)
    },
    HostileRow("unaligned offset 4097", .success) { f throws(MmapError) in
        let map = try Mmap(fileDescriptor: f.readOnly, offset: 4097, count: 10)
        precondition(map.count == 10)
    },
    HostileRow("explicit count 0: empty", .success) { f throws(MmapError) in
        let map = try Mmap(fileDescriptor: f.readOnly, count: 0)
        precondition(map.isEmpty)
    },
    HostileRow("empty file: empty", .success) { f throws(MmapError) in
        let map = try Mmap(path: f.empty)
        precondition(map.isEmpty)
    },
    HostileRow("explicit count past the end (allowed)", .success) { f throws(MmapError) in
        let map = try Mmap(fileDescriptor: f.readOnly, count: f.size + 10 * f.page)
        precondition(map.count == f.size + 10 * f.page)
    },
    // Descriptors.
    HostileRow("closed descriptor, count inferred", fails(.system, EBADF)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.closed)
    },
    HostileRow("closed descriptor, explicit count", fails(.system, EBADF)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.closed, count: 10)
    },
    HostileRow("descriptor -1", fails(.system, EBADF)) { _ throws(MmapError) in
        _ = try Mmap(fileDescriptor: -1)
    },
    HostileRow("descriptor 99999", fails(.system, EBADF)) { _ throws(MmapError) in
        _ = try MutableMmap(fileDescriptor: 99_999, count: 4096)
    },
    HostileRow("write-only descriptor, read-only map", fails(.permissionDenied, EACCES)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.writeOnly)
    },
    HostileRow("read-only descriptor, shared writable map", fails(.permissionDenied, EACCES)) { f throws(MmapError) in
        _ = try MutableMmap(fileDescriptor: f.readOnly)
    },
    HostileRow("read-only descriptor, private writable map", .success) { f throws(MmapError) in
        _ = try MutableMmap(fileDescriptor: f.readOnly, sharing: .private)
    },
    HostileRow("directory, count inferred", fails(.notMappable, ENODEV)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.directoryFD)
    },
    HostileRow("directory, explicit count", fails(.notMappable, ENODEV)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.directoryFD, count: 4096)
    },
    HostileRow("FIFO by path", fails(.notMappable, ENODEV)) { f throws(MmapError) in
        _ = try Mmap(path: f.fifo)
    },
    HostileRow("socket, count inferred", fails(.notMappable, ENODEV)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.socket)
    },
    HostileRow("socket, explicit count", fails(.notMappable, ENODEV)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.socket, count: 4096)
    },
    HostileRow("/dev/zero, explicit count", .success) { _ throws(MmapError) in
        _ = try MutableMmap(path: "/dev/zero", count: 4096, sharing: .private)
    },
    HostileRow("/dev/zero, count inferred (no size)", fails(.invalidArgument, 0)) { _ throws(MmapError) in
        _ = try Mmap(path: "/dev/zero")
    },
    HostileRow("/dev/null, explicit count", fails(.notMappable, ENODEV)) { _ throws(MmapError) in
        _ = try Mmap(path: "/dev/null", count: 4096)
    },
    HostileRow("/proc file, count inferred: empty", .success) { _ throws(MmapError) in
        let map = try Mmap(path: "/proc/self/status")
        precondition(map.isEmpty)
    },
    HostileRow("/proc file, explicit count", fails(.notMappable, ENODEV)) { _ throws(MmapError) in
        _ = try Mmap(path: "/proc/self/status", count: 4096)
    },
    HostileRow("read-only path opened for writing (/sys)", fails(.permissionDenied, EACCES)) { _ throws(MmapError) in
        _ = try MutableMmap(path: "/sys/kernel/notes")
    },
    HostileRow("running executable opened for writing", fails(.permissionDenied, ETXTBSY)) { _ throws(MmapError) in
        _ = try MutableMmap(path: "/proc/self/exe")
    },
    HostileRow("missing path", fails(.system, ENOENT)) { f throws(MmapError) in
        _ = try Mmap(path: f.directory.file("missing"))
    },
    HostileRow("empty path", fails(.system, ENOENT)) { _ throws(MmapError) in
        _ = try Mmap(path: "")
    },
    HostileRow("path too long", fails(.system, ENAMETOOLONG)) { _ throws(MmapError) in
        _ = try Mmap(path: "/" + String(repeating: "x", count: 5000))
    },
    // Anonymous memory and options the kernel refuses.
    HostileRow("anonymous count -1", fails(.invalidArgument, 0)) { _ throws(MmapError) in
        _ = try MutableMmap(anonymous: -1)
    },
    HostileRow("anonymous count Int.max", fails(.invalidArgument, 0)) { _ throws(MmapError) in
        _ = try MutableMmap(anonymous: .max)
    },
    HostileRow("anonymous count 0: empty", .success) { _ throws(MmapError) in
        _ = try MutableMmap(anonymous: 0, sharing: .shared)
    },
    HostileRow("anonymous 1 TiB, no reserve: address space only", .success) { _ throws(MmapError) in
        _ = try MutableMmap(anonymous: 1 << 40, options: MmapOptions().noReserve())
    },
    HostileRow(
        "explicit 2 MiB huge pages, anonymous",
        // Unsupported where none are reserved (the default, and this CI machine); else it maps.
        hugePagesReserved() ? .success : fails(.unsupported, ENOMEM)
    ) { _ throws(MmapError) in
        _ = try MutableMmap(anonymous: 4096, options: MmapOptions().hugePages(.explicit2MiB))
    },
    HostileRow("explicit huge pages on a regular file", fails(.unsupported, EINVAL)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.readOnly, options: MmapOptions().hugePages(.explicit2MiB))
    },
    HostileRow("explicit huge pages, offset not a huge-page multiple", fails(.invalidArgument, 0)) {
        f throws(MmapError) in
        _ = try Mmap(
            fileDescriptor: f.readOnly,
            offset: 4096,
            count: 1,
            options: MmapOptions().hugePages(.explicit2MiB)
        )
    },
    HostileRow("MAP_SYNC on a regular file", fails(.unsupported, EOPNOTSUPP)) { f throws(MmapError) in
        _ = try MutableMmap(fileDescriptor: f.readWrite, options: MmapOptions().mapSync())
    },
    HostileRow("MAP_SYNC on a private mapping", fails(.invalidArgument, 0)) { f throws(MmapError) in
        _ = try MutableMmap(fileDescriptor: f.readWrite, sharing: .private, options: MmapOptions().mapSync())
    },
    HostileRow("initial advice that fails after mapping (populate past the end)", fails(.fault, EFAULT)) {
        f throws(MmapError) in
        _ = try Mmap(
            fileDescriptor: f.readOnly,
            count: f.size + 8 * f.page,
            options: MmapOptions().advice(.populateRead)
        )
    },
    // Ranges on live mappings.
    HostileRow("flush range past the end", fails(.outOfBounds, 0)) { f throws(MmapError) in
        try Mmap(fileDescriptor: f.readOnly).flush(range: 0..<(f.size + 1))
    },
    HostileRow("flush range with a negative start", fails(.outOfBounds, 0)) { f throws(MmapError) in
        try Mmap(fileDescriptor: f.readOnly).flush(range: -1..<1)
    },
    HostileRow("unaligned flush range inside", .success) { f throws(MmapError) in
        try MutableMmap(fileDescriptor: f.readWrite).flush(range: 4097..<5000)
    },
    HostileRow("advise range at Int.max", fails(.outOfBounds, 0)) { f throws(MmapError) in
        try Mmap(fileDescriptor: f.readOnly).advise(.willNeed, range: (Int.max - 1)..<Int.max)
    },
    HostileRow("destructive advice range past the end", fails(.outOfBounds, 0)) { _ throws(MmapError) in
        var map = try MutableMmap(anonymous: 4096)
        try map.advise(.dontNeed, range: 0..<4097)
    },
    HostileRow("lock range past the end", fails(.outOfBounds, 0)) { f throws(MmapError) in
        try Mmap(fileDescriptor: f.readOnly).lock(range: 0..<(f.size + 1))
    },
    HostileRow("residency range past the end", fails(.outOfBounds, 0)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.readOnly).residency(range: f.size..<(f.size + 1))
    },
    HostileRow("populate range past the end", fails(.outOfBounds, 0)) { f throws(MmapError) in
        try Mmap(fileDescriptor: f.readOnly).populate(range: 0..<(f.size + 1))
    },
    HostileRow("remap to 0", fails(.invalidArgument, 0)) { _ throws(MmapError) in
        var map = try MutableMmap(anonymous: 4096)
        try map.remap(count: 0, mayMove: true)
    },
    HostileRow("remap to Int.max", fails(.invalidArgument, 0)) { _ throws(MmapError) in
        var map = try MutableMmap(anonymous: 4096)
        try map.remap(count: .max, mayMove: true)
    },
    HostileRow("remap of an empty mapping", fails(.invalidArgument, 0)) { _ throws(MmapError) in
        var map = try Mmap(path: "/proc/self/status")
        try map.remap(count: 4096, mayMove: true)
    },
    HostileRow("grow to a smaller count", fails(.invalidArgument, 0)) { f throws(MmapError) in
        var map = try MutableMmap(fileDescriptor: f.readWrite)
        try map.grow(to: 10, fileDescriptor: f.readWrite)
    },
    HostileRow("grow with a closed descriptor", fails(.system, EBADF)) { f throws(MmapError) in
        var map = try MutableMmap(fileDescriptor: f.readWrite)
        try map.grow(to: f.size + 8192, fileDescriptor: f.closed)
    },
    HostileRow("grow of anonymous memory into a file", fails(.invalidArgument, 0)) { f throws(MmapError) in
        var map = try MutableMmap(anonymous: 4096)
        try map.grow(to: 8192, fileDescriptor: f.readWrite)
    },
    HostileRow("grow of an empty anonymous mapping into a file", fails(.invalidArgument, 0)) { f throws(MmapError) in
        var map = try MutableMmap(anonymous: 0)
        try map.grow(to: 8192, fileDescriptor: f.readWrite)
    },
    HostileRow("path with an embedded NUL", fails(.invalidArgument, 0)) { f throws(MmapError) in
        _ = try MutableMmap(path: f.data + "\0ignored")
    },
    HostileRow("huge page log2 out of range", fails(.invalidArgument, 0)) { _ throws(MmapError) in
        _ = try MmapOptions.HugePages.explicit(log2: 12)
    },
    HostileRow("split past the end", fails(.outOfBounds, 0)) { f throws(MmapError) in
        var view = try Mmap(fileDescriptor: f.readOnly).share()
        _ = try view.split(at: f.size + 1)
    },
    HostileRow("restrict outside the view", fails(.outOfBounds, 0)) { f throws(MmapError) in
        var view = try Mmap(fileDescriptor: f.readOnly).share()
        try view.restrict(to: 10..<(f.size + 1))
    },
    HostileRow("guarded load past the end", fails(.outOfBounds, 0)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.readOnly).guardedLoad(fromByteOffset: f.size - 7, as: UInt64.self)
    },
    HostileRow("guarded bytes at Int.max", fails(.outOfBounds, 0)) { f throws(MmapError) in
        _ = try Mmap(fileDescriptor: f.readOnly).guardedBytes((Int.max - 1)..<Int.max)
    },
    HostileRow("guarded store at a negative offset", fails(.outOfBounds, 0)) { _ throws(MmapError) in
        var map = try MutableMmap(anonymous: 4096)
        try map.guardedStore(UInt8(1), toByteOffset: -1)
    },
]

extension MmapKitTests {
    @Suite struct HostileInputTests {
        @Test func theMatrixHasAtLeastFortyRows() {
            #expect(hostileRows.count >= 40)
        }

        @Test(arguments: hostileRows)
        func hostileInput(_ row: HostileRow) {
            let fixture = HostileFixture.shared
            let before = _MmapDiagnostics.liveMappings
            var thrown: MmapError? = nil
            do throws(MmapError) {
                try row.run(fixture)
            } catch {
                thrown = error
            }
            switch row.outcome {
            case .success:
                #expect(thrown == nil, "\(row.name): \(String(describing: thrown))")
            case .failure(let code, let errno):
                #expect(thrown?.code == code, "\(row.name): \(String(describing: thrown))")
                if let errno { #expect(thrown?.errno == errno, "\(row.name): \(String(describing: thrown))") }
                #expect(thrown.map { !$0.message.isEmpty } == true)
            }
            #expect(_MmapDiagnostics.liveMappings == before, "\(row.name) leaked a mapping")
        }
    }
}

/// Whether the system has free 2 MiB hugetlbfs pages (HugePages_Free in /proc/meminfo).
func hugePagesReserved() -> Bool {
    let meminfo = String(decoding: readFile("/proc/meminfo"), as: UTF8.self)
    let line = meminfo.split(separator: "\n").first { $0.hasPrefix("HugePages_Free:") } ?? ""
    return (Int(line.split(separator: " ").last ?? "") ?? 0) > 0
}
