#if SystemInterop
import Glibc
import MmapKit
import SystemPackage
import Testing

extension MmapKitTests {
    /// The `SystemInterop` trait: `FileDescriptor` and `FilePath` wherever a descriptor or a path
    /// is taken (`swift test --traits SystemInterop`, or `make test-traits`).
    @Suite struct SystemInteropTests {
        let directory = TemporaryDirectory()

        /// A file whose name is not UTF-8 (`caf\xe9-\xff.bin`), made with the raw bytes.
        func makeFileWithANameThatIsNotUTF8(count: Int) -> FilePath {
            let name: [UInt8] = Array("\(directory.path)/caf".utf8) + [0xE9, 0x2D, 0xFF] + Array(".bin".utf8)
            let cName = name.map { CChar(bitPattern: $0) } + [0]
            let path = unsafe cName.withUnsafeBufferPointer { unsafe FilePath(platformString: $0.baseAddress!) }
            let fd = unsafe cName.withUnsafeBufferPointer {
                unsafe open($0.baseAddress!, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o644)
            }
            precondition(fd >= 0, "cannot create the file")
            defer { close(fd) }
            let bytes = pattern(count)
            let written = unsafe bytes.withUnsafeBytes { unsafe write(fd, $0.baseAddress, $0.count) }
            precondition(written == count, "write failed")
            return path
        }

        @Test func mapsAFileDescriptor() throws {
            let path = directory.makeFile("data", count: 10_000)
            let fd = try FileDescriptor.open(FilePath(path), .readOnly)
            defer { try? fd.close() }
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(fileDescriptor: fd, offset: 100)
                #expect(array(map.bytes) == pattern(9_900, from: 100))
                let copy = try MutableMmap(fileDescriptor: fd, count: 4096, sharing: .private)
                #expect(copy.count == 4096)
            }
        }

        @Test func aFilePathKeepsANameThatIsNotUTF8EndToEnd() throws {
            let path = makeFileWithANameThatIsNotUTF8(count: 5_000)
            // The bytes reach open(2) unchanged: the file is found and read.
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path)
                #expect(array(map.bytes) == pattern(5_000))
                var writable = try MutableMmap(path: path, offset: 10, count: 10)
                var bytes = writable.mutableBytes
                bytes.storeBytes(of: 0xAB, toByteOffset: 0, as: UInt8.self)
                try writable.flush()
            }
            var expected = pattern(5_000)
            expected[10] = 0xAB
            try expectNoLeaks { () throws(MmapError) in
                #expect(array(try Mmap(path: path, sharing: .private).bytes) == expected)
            }
            // What the trait avoids: a String decoded from the bytes names another file.
            let decoded = unsafe path.withPlatformString { unsafe String(cString: $0) }
            let error = expectMmapError(.system, errno: ENOENT) { () throws(MmapError) in
                _ = try Mmap(path: decoded)
            }
            #expect(error?.operation == .open)
        }

        @Test func aStringLiteralPathStillMeansAString() throws {
            // With the trait on, `FilePath` is also expressible by a string literal: the call
            // must still resolve (to the `String` overload) and fail cleanly.
            let error = expectMmapError(.system, errno: ENOENT) { () throws(MmapError) in
                _ = try Mmap(path: "/nonexistent/mmapkit")
            }
            #expect(error?.operation == .open)
        }

        /// What swift-system does to a path before MmapKit sees it: a `FilePath` made from a
        /// `String` ends at its first NUL, and drops a trailing slash. The documentation of
        /// `init(path: FilePath, ...)` says so; this test fails if swift-system changes it.
        @Test func aFilePathIsTheNameSwiftSystemKeptNotTheStringItWasMadeOf() throws {
            let path = directory.makeFile("data", count: 4096)
            let cut = FilePath(path + "\u{0}.secret")
            #expect(cut == FilePath(path))
            let map = try Mmap(path: cut)  // maps `data`: the bytes after the NUL never reach open(2)
            #expect(map.count == 4096)
            #expect(FilePath(path + "/") == FilePath(path))  // not ENOTDIR, as the String path gives
            let error = #expect(throws: MmapError.self) { _ = try Mmap(path: path + "/") }
            #expect(error?.errno == ENOTDIR)
            let nul = #expect(throws: MmapError.self) { _ = try Mmap(path: path + "\u{0}.secret") }
            #expect(nul?.code == .invalidArgument)  // a String path with a NUL is refused
        }

        @Test func anErrorNamesAFilePathThatIsNotUTF8ByItsBytes() throws {
            let name: [UInt8] = Array("\(directory.path)/missing-".utf8) + [0xE9, 0xFF, 0x0A] + [0]
            let path = unsafe name.map { CChar(bitPattern: $0) }.withUnsafeBufferPointer {
                unsafe FilePath(platformString: $0.baseAddress!)
            }
            let error = #expect(throws: MmapError.self) { _ = try Mmap(path: path) }
            #expect(error?.errno == ENOENT)
            // Each byte that is not UTF-8, and the newline, as \xNN: not U+FFFD, which names no byte.
            #expect(error?.message.contains("missing-\\xe9\\xff\\x0a'") == true)
            #expect(error?.message.contains("\u{FFFD}") == false)
        }

        @Test func aMissingFilePathIsAnOpenErrorAndMapsNothing() throws {
            expectNoLeaks {
                let error = expectMmapError(.system, errno: ENOENT) { () throws(MmapError) in
                    _ = try MutableMmap(path: FilePath("\(directory.path)/missing"))
                }
                #expect(error?.operation == .open)
                #expect(error?.description.contains("missing") == true)
            }
        }

        @Test func growsFlushesAndCommitsThroughAFileDescriptor() throws {
            let path = directory.makeFile("data", count: 4096)
            let fd = try FileDescriptor.open(FilePath(path), .readWrite)
            defer { try? fd.close() }
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(fileDescriptor: fd)
                try map.grow(to: 8192, fileDescriptor: fd)
                var bytes = map.mutableBytes
                bytes.storeBytes(of: 0x5A, toByteOffset: 8191, as: UInt8.self)
                try map.flush(dataSyncing: fd)

                var file = try MmapGrowableFile(fileDescriptor: fd, capacity: 1 << 20)
                try file.grow(to: 12_288)
                #expect(file.count == 12_288)

                var reservation = try MmapReservation(count: 1 << 20)
                try reservation.commit(0..<4096, fileDescriptor: fd, fileOffset: 0)
            }
            let contents = readFile(path)
            #expect(contents.count == 12_288)
            #expect(contents[8191] == 0x5A)
            #expect(Array(contents[0..<4096]) == pattern(4096))
        }
    }
}
#endif
