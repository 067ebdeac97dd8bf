import Glibc
import MmapKit
import Testing

extension MmapKitTests {
    @Suite struct MutableMmapTests {
        let directory = TemporaryDirectory()

        @Test func sharedWritesReachTheFileAfterFlush() throws {
            let path = directory.makeFile("data", count: 10_000)
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(path: path, offset: 5000)
                var bytes = map.mutableBytes
                for i in 0..<5000 { bytes.storeBytes(of: UInt8(i % 256), toByteOffset: i, as: UInt8.self) }
                try map.flush(range: 4000..<5000)
                try map.flush()
            }
            let expected = Array(pattern(10_000)[0..<5000]) + (0..<5000).map { UInt8($0 % 256) }
            #expect(readFile(path) == expected)
        }

        @Test func sharedMappingOfAReadOnlyDescriptorIsRefused() {
            let path = directory.makeFile("data", count: 4096)
            let fd = openFile(path, O_RDONLY)
            defer { close(fd) }
            expectNoLeaks {
                expectMmapError(.permissionDenied, errno: EACCES) { () throws(MmapError) in
                    _ = try MutableMmap(fileDescriptor: fd)
                }
                let writeOnly = openFile(path, O_WRONLY)
                defer { close(writeOnly) }
                expectMmapError(.permissionDenied, errno: EACCES) { () throws(MmapError) in
                    _ = try MutableMmap(fileDescriptor: writeOnly)
                }
            }
        }

        @Test func privateMappingByPathOpensReadOnlyAndKeepsTheFile() throws {
            let path = directory.makeFile("data", count: 4096)
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(path: path, sharing: .private)
                var bytes = map.mutableBytes
                bytes.storeBytes(of: 0xFFFF_FFFF, toByteOffset: 8, as: UInt32.self)
                let stored = unsafe map.bytes.unsafeLoad(fromByteOffset: 8, as: UInt32.self)
                #expect(stored == 0xFFFF_FFFF)
            }
            #expect(readFile(path) == pattern(4096))
        }

        @Test func anonymousMemoryIsZeroFilledAndWritable() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 3 * 4096 + 5)
                #expect(map.count == 3 * 4096 + 5)
                #expect(array(map.bytes).allSatisfy { $0 == 0 })
                unsafe map.withUnsafeMutableBytes { unsafe $0.copyBytes(from: pattern($0.count)) }
                #expect(array(map.bytes) == pattern(3 * 4096 + 5))
                let empty = try MutableMmap(anonymous: 0)
                let isEmpty = empty.isEmpty
                #expect(isEmpty)
            }
        }

        @Test func sharedAnonymousMemorySurvivesFork() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 4096, sharing: .shared)
                let pid = unsafe map.withUnsafeMutableBytes { buffer in
                    let pid = fork()
                    if pid == 0 {
                        // The child does only async-signal-safe work: a store, then _exit.
                        unsafe buffer.storeBytes(of: 0x1234_5678, toByteOffset: 64, as: UInt32.self)
                        _exit(0)
                    }
                    return pid
                }
                #expect(pid > 0)
                var status: CInt = 0
                #expect(unsafe waitpid(pid, &status, 0) == pid)
                let seen = unsafe map.bytes.unsafeLoad(fromByteOffset: 64, as: UInt32.self)
                #expect(seen == 0x1234_5678)
            }
        }

        @Test func privateAnonymousMemoryIsNotSharedWithAForkedChild() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 4096)
                let pid = unsafe map.withUnsafeMutableBytes { buffer in
                    let pid = fork()
                    if pid == 0 {
                        unsafe buffer.storeBytes(of: 0x1234_5678, toByteOffset: 64, as: UInt32.self)
                        _exit(0)
                    }
                    return pid
                }
                var status: CInt = 0
                #expect(unsafe waitpid(pid, &status, 0) == pid)
                let seen = unsafe map.bytes.unsafeLoad(fromByteOffset: 64, as: UInt32.self)
                #expect(seen == 0)
            }
        }

        @Test func makeReadOnlyThenMakeMutableRoundTrips() throws {
            let calls = try countingCalls { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 4096)
                var bytes = map.mutableBytes
                bytes.storeBytes(of: 7, toByteOffset: 0, as: UInt8.self)
                let readOnly = try map.makeReadOnly()
                #expect(firstByte(of: readOnly) == 7)
                var again = try readOnly.makeMutable()
                var more = again.mutableBytes
                more.storeBytes(of: 8, toByteOffset: 1, as: UInt8.self)
                let second = unsafe again.bytes.unsafeLoad(fromByteOffset: 1, as: UInt8.self)
                #expect(second == 8)
                let executable = try again.makeExecutable()
                #expect(executable.count == 4096)
            }
            #expect(calls.maps == 1 && calls.unmaps == 1)
        }

        @Test func writingAfterMakeReadOnlyFaults() async {
            await #expect(processExitsWith: runningUnderSanitizer ? .failure : .signal(SIGSEGV)) {
                let map = try MutableMmap(anonymous: 4096).makeReadOnly()
                unsafe map.withUnsafeBytes { buffer in
                    unsafe UnsafeMutableRawPointer(mutating: buffer.baseAddress!).storeBytes(of: 1, as: UInt8.self)
                }
            }
        }

        @Test func unmapReportsAndEndsExactlyOnce() throws {
            let calls = try countingCalls { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 1 << 20)
                try map.unmap()
                var empty = try MutableMmap(anonymous: 0)
                try empty.unmap()
            }
            #expect(calls.maps == 1 && calls.unmaps == 1)
        }
    }
}

private func firstByte(of map: borrowing Mmap) -> UInt8 {
    unsafe map.bytes.unsafeLoad(fromByteOffset: 0, as: UInt8.self)
}
