#if FoundationInterop
import Foundation
import Glibc
import MmapKit
import Testing

extension MmapKitTests {
    /// The `FoundationInterop` trait: `Data(mapping:)` owns a mapping without a copy, and
    /// `FileHandle` is taken wherever a descriptor is (`swift test --traits FoundationInterop`,
    /// or `make test-traits`).
    @Suite struct FoundationInteropTests {
        let directory = TemporaryDirectory()

        /// The address of a `Data`'s first byte.
        func address(_ data: Data) -> UInt {
            unsafe data.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
        }

        @Test func dataOwnsTheMappingWithoutACopyAndUnmapsItOnceWhenReleased() throws {
            let path = directory.makeFile("data", count: 20_000)
            try expectNoLeaks {
                let before = _MmapDiagnostics.liveMappings
                let calls = try countingCalls { () throws(MmapError) in
                    // An offset inside a page: the Data starts at that byte, the unmap covers the
                    // whole mapping from the page below it.
                    let map = try MutableMmap(path: path, offset: 100, sharing: .private)
                    let start = unsafe map.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
                    let data = try Data(mapping: map)
                    #expect(address(data) == start)  // no copy
                    #expect(data.count == 19_900)
                    #expect(Array(data) == pattern(19_900, from: 100))
                    #expect(_MmapDiagnostics.liveMappings == before + 1)
                    var copy: Data? = data
                    withExtendedLifetime(data) {}
                    #expect(_MmapDiagnostics.liveMappings == before + 1)  // the copy keeps it
                    #expect(copy?.count == 19_900)
                    copy = nil
                }
                #expect(calls.maps == 1)
                #expect(calls.unmaps == 1)
            }
        }

        @Test func dataReleasedOnAnotherThreadUnmapsThere() throws {
            try expectNoLeaks { () throws(MmapError) in
                let data = try Data(mapping: MutableMmap(anonymous: 1 << 20))
                // The only reference moves to the other thread, which releases it when it ends.
                Thread.detach { withExtendedLifetime(data) {} }
            }
        }

        @Test func aMutationOfTheOnlyReferenceWritesThroughAPrivateMappingNeverToTheFile() throws {
            let path = directory.makeFile("data", count: 8192)
            try expectNoLeaks { () throws(MmapError) in
                var data = try Data(mapping: Mmap(path: path, sharing: .private))
                let start = address(data)
                data[0] = 0xFF
                #expect(address(data) == start)  // in place, in the private pages
                var copy = data
                copy[1] = 0xEE  // a copy gets its own bytes
                #expect(address(copy) != start)
                #expect(data[1] == pattern(2)[1])
            }
            #expect(readFile(path) == pattern(8192))
        }

        @Test func aMutationOfASharedWritableMappingReachesTheFile() throws {
            let path = directory.makeFile("data", count: 8192)
            try expectNoLeaks { () throws(MmapError) in
                var data = try Data(mapping: MutableMmap(path: path))
                data[5] = 0x42
            }
            var expected = pattern(8192)
            expected[5] = 0x42
            #expect(readFile(path) == expected)
        }

        @Test func aSharedReadOnlyMappingIsRefusedAndUnmapped() throws {
            let path = directory.makeFile("data", count: 8192)
            let calls = countingCalls {
                expectNoLeaks {
                    let error = expectMmapError(.invalidArgument) { () throws(MmapError) in
                        _ = try Data(mapping: Mmap(path: path))
                    }
                    #expect(error?.operation == .protect)
                }
            }
            #expect(calls.maps == 1)
            #expect(calls.unmaps == 1)
        }

        @Test func aFailedMprotectLeavesNothingMapped() throws {
            try #require(_MmapFaultInjection.isAvailable, "fault injection is in debug builds only")
            let path = directory.makeFile("data", count: 8192)
            let calls = countingCalls {
                expectNoLeaks {
                    _MmapFaultInjection.inject(.mprotect, errno: ENOMEM)
                    defer { _MmapFaultInjection.reset() }
                    expectMmapError(.outOfMemory, errno: ENOMEM) { () throws(MmapError) in
                        _ = try Data(mapping: Mmap(path: path, sharing: .private))
                    }
                }
            }
            #expect(calls.maps == 1)
            #expect(calls.unmaps == 1)
        }

        @Test func aGrowingDataMovesToTheHeapAndUnmapsOnce() throws {
            let calls = try countingCalls { () throws(MmapError) in
                try expectNoLeaks { () throws(MmapError) in
                    var data = try Data(mapping: MutableMmap(anonymous: 4096))
                    let before = _MmapDiagnostics.liveMappings
                    data.append(contentsOf: [1, 2, 3])
                    #expect(_MmapDiagnostics.liveMappings == before - 1)  // unmapped at the move
                    #expect(data.count == 4099)
                    #expect(data.last == 3)
                }
            }
            #expect(calls.maps == 1)
            #expect(calls.unmaps == 1)
        }

        @Test func aDataThatShrinksAndGrowsBackStaysInTheMappingAndZeroFills() throws {
            let path = directory.makeFile("data", count: 8192)
            try expectNoLeaks { () throws(MmapError) in
                let before = _MmapDiagnostics.liveMappings
                var data = try Data(mapping: MutableMmap(path: path))
                let start = address(data)
                data.count = 100
                data.count = 8192  // within the mapping's length: in place, zero-filled
                #expect(address(data) == start)
                #expect(_MmapDiagnostics.liveMappings == before + 1)
                #expect(data[5000] == 0)
                data.replaceSubrange(0..<10, with: [9])  // fewer bytes: in place
                #expect(address(data) == start)
                data.append(contentsOf: [UInt8](repeating: 1, count: 20))  // past the length: heap
                #expect(address(data) != start)
                #expect(_MmapDiagnostics.liveMappings == before)
            }
            // The zero fill reached the file: the mapping was shared.
            let file = try #require(FileManager.default.contents(atPath: path))
            #expect(file[5000] == 0)
            #expect(file[0] == 9)
            #expect(file[1] == pattern(8192)[10])  // the replace moved the bytes after it down, in the file
        }

        @Test func aMappingPastTheEndOfItsFileIsRefusedAndUnmapped() throws {
            let path = directory.makeFile("data", count: 4096)
            try expectNoLeaks { () throws(MmapError) in
                let before = _MmapDiagnostics.liveMappings
                // An explicit count two pages past the end of the file.
                let error = #expect(throws: MmapError.self) {
                    _ = try Data(mapping: MutableMmap(path: path, count: 3 * 4096, sharing: .private))
                }
                #expect(error?.code == .outOfBounds)
                #expect(error?.operation == .access)
                // A file truncated after it was mapped.
                let map = try Mmap(path: path, sharing: .private)
                #expect(unsafe truncate(path, 0) == 0)
                do throws(MmapError) {
                    _ = try Data(mapping: map)
                    Issue.record("a Data over a truncated file was made")
                } catch {
                    #expect(error.code == .outOfBounds)
                }
                #expect(_MmapDiagnostics.liveMappings == before)
                // Within the file's last page, the bytes past its end are zeros, not SIGBUS.
                #expect(unsafe truncate(path, 100) == 0)
                let tail = try Data(mapping: MutableMmap(path: path, count: 4096, sharing: .private))
                #expect(tail.count == 4096)
                #expect(tail[4095] == 0)
            }
        }

        @Test func smallAndEmptyMappingsAreUnmappedAtOnce() throws {
            let path = directory.makeFile("data", count: 10)
            try expectNoLeaks { () throws(MmapError) in
                let before = _MmapDiagnostics.liveMappings
                // Data keeps up to 14 bytes inline: it copies them and releases the mapping.
                let small = try Data(mapping: MutableMmap(path: path, sharing: .private))
                #expect(_MmapDiagnostics.liveMappings == before)
                #expect(Array(small) == pattern(10))
                let empty = try Data(mapping: MutableMmap(anonymous: 0))
                #expect(empty.isEmpty)
                let emptyFile = try Data(mapping: Mmap(path: path, offset: 10, sharing: .private))
                #expect(emptyFile.isEmpty)
            }
        }

        @Test func fileHandlesAreTakenWhereverADescriptorIs() throws {
            let path = directory.makeFile("data", count: 4096)
            let handle = try #require(FileHandle(forUpdatingAtPath: path))
            defer { try? handle.close() }
            try expectNoLeaks { () throws(MmapError) in
                let map = try Mmap(fileHandle: handle, offset: 1)
                #expect(array(map.bytes) == pattern(4095, from: 1))

                var writable = try MutableMmap(fileHandle: handle)
                try writable.grow(to: 8192, fileHandle: handle)
                var bytes = writable.mutableBytes
                bytes.storeBytes(of: 0x77, toByteOffset: 8000, as: UInt8.self)
                try writable.flush(dataSyncing: handle)

                var file = try MmapGrowableFile(fileHandle: handle, capacity: 1 << 20)
                try file.grow(to: 12_288)

                var reservation = try MmapReservation(count: 1 << 20)
                try reservation.commit(0..<4096, fileHandle: handle, fileOffset: 0, sharing: .private)
            }
            let contents = readFile(path)
            #expect(contents.count == 12_288)
            #expect(contents[8000] == 0x77)
        }

        @Test func aSharedWritableMappingOfAReadOnlyHandleIsRefused() throws {
            let path = directory.makeFile("data", count: 4096)
            let handle = try #require(FileHandle(forReadingAtPath: path))
            defer { try? handle.close() }
            expectNoLeaks {
                _ = expectMmapError(.permissionDenied, errno: EACCES) { () throws(MmapError) in
                    _ = try MutableMmap(fileHandle: handle)
                }
            }
        }
    }
}
#endif
