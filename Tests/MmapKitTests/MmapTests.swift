import Glibc
import MmapKit
import Testing

extension MmapKitTests {
    @Suite struct MmapTests {
        let directory = TemporaryDirectory()

        @Test func mapsAWholeFileByPath() throws {
            let path = directory.makeFile("data", count: 10_000)
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path)
                #expect(map.count == 10_000)
                #expect(array(map.bytes) == pattern(10_000))
            }
        }

        @Test func mapsByDescriptorAndStaysValidAfterClose() throws {
            let path = directory.makeFile("data", count: 5000)
            try expectNoLeaks { () throws(MmapError) in
                let fd = openFile(path, O_RDONLY)
                let map = try Mmap(fileDescriptor: fd)
                close(fd)
                #expect(array(map.bytes) == pattern(5000))
            }
        }

        @Test(arguments: [0, 1, 1000, 4095, 4096, 4097, 9999])
        func mapsAtAnyByteOffset(offset: Int) throws {
            let path = directory.makeFile("data", count: 10_000)
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path, offset: Int64(offset))
                #expect(map.count == 10_000 - offset)
                #expect(array(map.bytes) == Array(pattern(10_000)[offset...]))
                let middle = try Mmap(path: path, offset: Int64(offset), count: 1)
                #expect(array(middle.bytes) == [pattern(10_000)[offset]])
            }
        }

        @Test func anErrorOfAMapByPathNamesThePathNotADescriptor() throws {
            let path = directory.file("subdirectory")
            let made = unsafe mkdir(path, 0o755)
            #expect(made == 0)
            try expectNoLeaks { () throws(MmapError) in
                let error = expectMmapError(.notMappable) { () throws(MmapError) in _ = try Mmap(path: path) }
                #expect(error?.message == "'\(path)' is a directory, which cannot be mapped")
            }
        }

        @Test func anErrorNamesAPathOnOneUnambiguousLine() throws {
            // A control character and a backslash are escaped; a huge path is cut.
            let strange = directory.file("new\nline\\x")
            let error = expectMmapError(.system) { () throws(MmapError) in _ = try Mmap(path: strange) }
            #expect(error?.message.contains("new\\x0aline\\x5cx") == true)
            #expect(error?.message.contains("\n") == false)
            let long = "/" + String(repeating: "a", count: 5_000)
            let tooLong = expectMmapError(.system) { () throws(MmapError) in _ = try Mmap(path: long) }
            #expect(tooLong?.errno == ENAMETOOLONG)
            #expect((tooLong?.message.utf8.count ?? .max) < 1_200)
            #expect(tooLong?.message.contains("(5001 bytes)") == true)
            // Invisible and reordering characters; a NUL error names the path the same way.
            let hidden = expectMmapError(.invalidArgument) { () throws(MmapError) in
                _ = try Mmap(path: "/tmp/a\u{202E}b\u{200B}\u{1}" + String(repeating: "\u{1}", count: 2_000) + "\u{0}x")
            }
            #expect(hidden?.message.hasPrefix("path '/tmp/a\\u{202E}b\\u{200B}\\x01") == true)
            #expect((hidden?.message.utf8.count ?? .max) < 1_200)
            // A cut never splits a character: no false \x for a name that is valid UTF-8.
            let accents = expectMmapError(.system) { () throws(MmapError) in
                _ = try Mmap(path: "/" + String(repeating: "é", count: 3_000))
            }
            #expect(accents?.message.contains("\\x") == false)
            #expect(accents?.message.contains("(6001 bytes)") == true)
        }

        @Test func growingThroughADescriptorOpenForReadingOnlyIsPermissionDenied() throws {
            let path = directory.makeFile("data", count: 4096)
            let readOnly = unsafe open(path, O_RDONLY | O_CLOEXEC)
            #expect(readOnly >= 0)
            defer { close(readOnly) }
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(path: path, sharing: .private)
                for allocate in [true, false] {
                    let error = expectMmapError(.permissionDenied) { () throws(MmapError) in
                        try map.grow(to: 8192, fileDescriptor: readOnly, allocate: allocate)
                    }
                    #expect(error?.message.contains("open for reading only") == true)
                }
                #expect(map.count == 4096)
            }
        }

        @Test func mapsAnEmptyFileAsEmpty() throws {
            let path = directory.makeFile("empty", bytes: [])
            let calls = try countingCalls { () throws(MmapError) in
                let map = try Mmap(path: path)
                let empty = map.isEmpty
                #expect(empty)
                #expect(map.bytes.byteCount == 0)
                try map.flush()
            }
            #expect(calls.maps == 0 && calls.unmaps == 0)
        }

        @Test func mapsAnOffsetEqualToTheFileSizeAsEmpty() throws {
            let path = directory.makeFile("data", count: 4096)
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path, offset: 4096)
                #expect(map.count == 0)
            }
        }

        @Test func rejectsAnOffsetPastTheEndWithAnInferredCount() {
            let path = directory.makeFile("data", count: 4096)
            let error = expectNoLeaks {
                expectMmapError(.outOfBounds, errno: 0) { () throws(MmapError) in _ = try Mmap(path: path, offset: 8192)
                }
            }
            #expect(error?.description == "mmap: offset 8192 is past the end of the 4096-byte file")
        }

        @Test func allowsAnExplicitCountPastTheEndOfTheFile() throws {
            // Decision: like mmap(2) and memmap2 (unlike Python), an explicit count may reach past
            // the end; the bytes inside the file read normally. Pages wholly past it raise SIGBUS.
            let path = directory.makeFile("data", count: 100)
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path, count: 4096)
                #expect(map.count == 4096)
                // The rest of the last page reads as zeros.
                #expect(array(map.bytes) == pattern(100) + [UInt8](repeating: 0, count: 3996))
            }
        }

        @Test func rejectsNegativeAndOverflowingArgumentsBeforeAnySyscall() {
            let path = directory.makeFile("data", count: 4096)
            let fd = openFile(path, O_RDONLY)
            defer { close(fd) }
            let calls = countingCalls {
                expectMmapError(.invalidArgument, errno: 0) { () throws(MmapError) in
                    _ = try Mmap(fileDescriptor: fd, offset: -1)
                }
                expectMmapError(.invalidArgument, errno: 0) { () throws(MmapError) in
                    _ = try Mmap(fileDescriptor: fd, count: -1)
                }
                expectMmapError(.invalidArgument, errno: 0) { () throws(MmapError) in
                    _ = try Mmap(fileDescriptor: fd, offset: .max - 10, count: 100)
                }
                expectMmapError(.invalidArgument, errno: 0) { () throws(MmapError) in
                    _ = try Mmap(fileDescriptor: fd, offset: 1, count: .max)
                }
                expectMmapError(.invalidArgument, errno: 0) { () throws(MmapError) in
                    _ = try Mmap(fileDescriptor: fd, count: .max)
                }
                expectMmapError(.invalidArgument, errno: 0) { () throws(MmapError) in
                    _ = try MutableMmap(anonymous: -5)
                }
                expectMmapError(.invalidArgument, errno: 0) { () throws(MmapError) in
                    _ = try MutableMmap(anonymous: .max)
                }
            }
            #expect(calls.maps == 0)
        }

        @Test func reportsABadDescriptor() {
            expectNoLeaks {
                let fd = openFile(directory.makeFile("data", count: 10), O_RDONLY)
                close(fd)
                let inferred = expectMmapError(.system, errno: EBADF) { () throws(MmapError) in
                    _ = try Mmap(fileDescriptor: fd)
                }
                #expect(inferred?.operation == .stat)
                let explicit = expectMmapError(.system, errno: EBADF) { () throws(MmapError) in
                    _ = try Mmap(fileDescriptor: fd, count: 10)
                }
                #expect(explicit?.operation == .map)
                expectMmapError(.system, errno: EBADF) { () throws(MmapError) in _ = try Mmap(fileDescriptor: -1) }
            }
        }

        @Test func refusesADirectory() {
            expectNoLeaks {
                let fd = openFile(directory.path, O_RDONLY | O_DIRECTORY)
                defer { close(fd) }
                expectMmapError(.notMappable, errno: ENODEV) { () throws(MmapError) in _ = try Mmap(fileDescriptor: fd)
                }
                expectMmapError(.notMappable, errno: ENODEV) { () throws(MmapError) in
                    _ = try Mmap(fileDescriptor: fd, count: 4096)
                }
                expectMmapError(.notMappable) { () throws(MmapError) in _ = try Mmap(path: directory.path) }
            }
        }

        @Test func refusesAFIFOWithoutBlocking() {
            let path = directory.file("fifo")
            #expect(unsafe mkfifo(path, 0o600) == 0)
            expectNoLeaks {
                // Opening by path must not wait for a writer (O_NONBLOCK).
                let error = expectMmapError(.notMappable, errno: ENODEV) { () throws(MmapError) in
                    _ = try Mmap(path: path)
                }
                #expect(error?.message.contains("FIFO") == true)
            }
        }

        @Test func refusesASocket() {
            var fds: [CInt] = [0, 0]
            #expect(unsafe socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0, &fds) == 0)
            defer { for fd in fds { close(fd) } }
            expectNoLeaks {
                expectMmapError(.notMappable, errno: ENODEV) { () throws(MmapError) in
                    _ = try Mmap(fileDescriptor: fds[0])
                }
                expectMmapError(.notMappable, errno: ENODEV) { () throws(MmapError) in
                    _ = try Mmap(fileDescriptor: fds[0], count: 4096)
                }
            }
        }

        @Test func handlesDevices() throws {
            try expectNoLeaks { () throws(MmapError) in
                // /dev/null has no size and no mmap: an explicit count gets the kernel's ENODEV.
                expectMmapError(.invalidArgument) { () throws(MmapError) in _ = try Mmap(path: "/dev/null") }
                expectMmapError(.notMappable, errno: ENODEV) { () throws(MmapError) in
                    _ = try Mmap(path: "/dev/null", count: 4096)
                }
                // /dev/zero maps (zero-filled) with an explicit count.
                let zero = try Mmap(path: "/dev/zero", count: 4096)
                #expect(array(zero.bytes) == [UInt8](repeating: 0, count: 4096))
            }
        }

        @Test func mapsAProcFileThatReportsSizeZeroAsEmpty() throws {
            // Decision: a /proc file reports size 0, so the inferred count maps it as empty;
            // with an explicit count the kernel refuses (ENODEV), reported as notMappable.
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: "/proc/self/status")
                #expect(map.count == 0)
                expectMmapError(.notMappable, errno: ENODEV) { () throws(MmapError) in
                    _ = try Mmap(path: "/proc/self/status", count: 4096)
                }
            }
        }

        @Test func reportsAMissingFile() {
            let error = expectMmapError(.system, errno: ENOENT) { () throws(MmapError) in
                _ = try Mmap(path: directory.file("missing"))
            }
            #expect(error?.operation == .open)
            #expect(error?.description.contains("No such file or directory (ENOENT)") == true)
        }

        @Test func mapsOffsetsPastFourGiB() throws {
            let path = directory.file("sparse")
            let fd = unsafe open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
            defer { close(fd) }
            let offset: Int64 = (5 << 30) + 12_345
            #expect(ftruncate(fd, off_t(offset + 4096)) == 0)
            let marker: [UInt8] = Array("far away".utf8)
            #expect(
                unsafe marker.withUnsafeBytes { unsafe pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
                    == marker.count
            )
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(fileDescriptor: fd, offset: offset, count: marker.count)
                #expect(array(map.bytes) == marker)
                let tail = try Mmap(fileDescriptor: fd, offset: offset)
                #expect(tail.count == 4096)
            }
        }

        @Test func privateMappingNeedsOnlyAReadableDescriptorAndNeverWritesTheFile() throws {
            let path = directory.makeFile("data", count: 8192)
            try expectNoLeaks { () throws(MmapError) in
                let fd = openFile(path, O_RDONLY)
                defer { close(fd) }
                let map = try Mmap(fileDescriptor: fd, sharing: .private)
                var writable = try map.makeMutable()
                var bytes = writable.mutableBytes
                bytes.storeBytes(of: 0xAB, toByteOffset: 0, as: UInt8.self)
                try writable.flush()
                #expect(unsafe writable.bytes.unsafeLoad(fromByteOffset: 0, as: UInt8.self) == 0xAB)
            }
            #expect(readFile(path) == pattern(8192))
        }

        @Test func makeMutableOfASharedMapOfAReadOnlyDescriptorFailsAndUnmapsOnce() throws {
            let path = directory.makeFile("data", count: 4096)
            let fd = openFile(path, O_RDONLY)
            defer { close(fd) }
            let calls = try countingCalls { () throws(MmapError) in
                let map = try Mmap(fileDescriptor: fd)
                do throws(MmapError) {
                    _ = try map.makeMutable()
                    Issue.record("makeMutable of a shared read-only mapping succeeded")
                } catch {
                    #expect(error.code == .permissionDenied && error.errno == EACCES)
                }
            }
            #expect(calls.maps == 1 && calls.unmaps == 1)
        }

        @Test func makeExecutableKeepsTheBytes() throws {
            let path = directory.makeFile("data", count: 100)
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path)
                let executable = try map.makeExecutable()
                #expect(array(executable.bytes) == pattern(100))
            }
        }

        @Test func unmapEndsTheMappingExactlyOnce() throws {
            let path = directory.makeFile("data", count: 100)
            let calls = try countingCalls { () throws(MmapError) in
                var map = try Mmap(path: path)
                try map.unmap()
            }
            #expect(calls.maps == 1 && calls.unmaps == 1)
        }

        @Test func withUnsafeBytesRethrowsTheClosuresTypedError() throws {
            struct Stop: Error {}
            let path = directory.makeFile("data", count: 100)
            let map = try Mmap(path: path)
            #expect(throws: Stop.self) {
                try unsafe map.withUnsafeBytes { (_) throws(Stop) in throw Stop() }
            }
            #expect(unsafe map.withUnsafeBytes { $0.count } == 100)
        }

        @Test func movesToAnotherThread() async throws {
            let path = directory.makeFile("data", count: 4096)
            let map = try Mmap(path: path)
            func byteSum(_ map: borrowing Mmap) -> Int {
                let bytes = map.bytes
                var sum = 0
                for i in 0..<bytes.byteCount { sum += Int(unsafe bytes.unsafeLoad(fromByteOffset: i, as: UInt8.self)) }
                return sum
            }
            let sum = await Task.detached { [map = consume map] in byteSum(map) }.value
            #expect(sum == pattern(4096).reduce(0) { $0 + Int($1) })
        }

        @Test func flushValidatesItsRange() throws {
            let path = directory.makeFile("data", count: 5000)
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(path: path, offset: 100)
                try map.flush(range: 0..<4900)
                try map.flush(range: 4000..<4900)
                try map.flushAsync()
                try map.flushAsync(range: 10..<20)
                expectMmapError(.outOfBounds) { () throws(MmapError) in try map.flush(range: 0..<4901) }
                expectMmapError(.outOfBounds) { () throws(MmapError) in try map.flush(range: -1..<10) }
            }
        }
    }
}
