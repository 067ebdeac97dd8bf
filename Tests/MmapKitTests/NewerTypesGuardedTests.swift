import Glibc
import MmapKit
import Testing

private let page = Int(sysconf(Int32(_SC_PAGESIZE)))

/// Truncates `path` to `size` bytes through a descriptor of its own.
private func truncate(_ path: String, to size: Int) {
    let fd = openFile(path, O_RDWR)
    precondition(ftruncate(fd, off_t(size)) == 0, "ftruncate failed")
    close(fd)
}

extension MmapKitTests {
    /// Guarded access on the types whose bytes can lose their backing, through the one
    /// implementation of `MmapBytes`/`MutableMmapBytes`.
    @Suite struct NewerTypesGuardedTests {
        let directory = TemporaryDirectory()

        @Test(.disabled(if: runningUnderThreadSanitizer, "TSan cannot recover from SIGBUS"))
        func aGrowableFileTruncatedThroughAnotherDescriptorFaultsInsteadOfCrashing() throws {
            let path = directory.makeFile("growable", count: 8 * page)
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                var file = try MmapGrowableFile(fileDescriptor: fd, capacity: 64 * page)
                try file.grow(to: 12 * page, allocate: false)
                truncate(path, to: 3 * page + 100)  // page 3 is partly backed, pages 4 to 11 are lost

                let expected = pattern(8 * page)
                #expect(try file.guardedLoad(fromByteOffset: 10, as: UInt8.self) == expected[10])
                #expect(
                    try file.guardedBytes((3 * page)..<(3 * page + 100))
                        == Array(expected[(3 * page)..<(3 * page + 100)])
                )
                let load = expectMmapError(.fault, errno: EFAULT) { () throws(MmapError) in
                    _ = try file.guardedLoad(fromByteOffset: 9 * page + 8, as: UInt64.self)
                }
                #expect(load?.faultOffset == 9 * page + 8)
                #expect(load?.operation == .access)
                let store = expectMmapError(.fault) { () throws(MmapError) in
                    try file.guardedStore(UInt32(7), toByteOffset: 5 * page + 4)
                }
                #expect(store?.faultOffset == 5 * page + 4)
                let across = expectMmapError(.fault) { () throws(MmapError) in
                    _ = try file.guardedBytes((4 * page - 10)..<(4 * page + 10))
                }
                #expect(across?.faultOffset == 4 * page)
                let arrayStore = expectMmapError(.fault) { () throws(MmapError) in
                    try file.guardedStoreBytes([1, 2, 3], toByteOffset: 6 * page)
                }
                #expect(arrayStore?.faultOffset == 6 * page)
                let prefault = expectMmapError(.fault) { () throws(MmapError) in try file.guardedPrefault() }
                #expect(prefault?.faultOffset == 4 * page)
                try file.guardedPrefault(range: 0..<(3 * page + 100))

                try file.guardedStoreBytes([1, 2, 3], toByteOffset: 100)
                #expect(try file.guardedBytes(100..<103) == [1, 2, 3])
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    _ = try file.guardedLoad(fromByteOffset: 12 * page - 1, as: UInt16.self)
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    try file.guardedStoreBytes([1], toByteOffset: -1)
                }
                // Growing again extends the file: the lost pages are backed once more.
                try file.grow(to: 13 * page, allocate: false)
                #expect(try file.guardedLoad(fromByteOffset: 9 * page + 8, as: UInt64.self) == 0)
            }
        }

        @Test(.disabled(if: runningUnderThreadSanitizer, "TSan cannot recover from SIGBUS"))
        func aReservationRangeCommittedFromATruncatedFileFaultsInsteadOfCrashing() throws {
            let path = directory.makeFile("committed", count: 4 * page)
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            try expectNoLeaks { () throws(MmapError) in
                var reservation = try MmapReservation(count: 16 * page)
                try reservation.commit((4 * page)..<(8 * page), fileDescriptor: fd, fileOffset: 0)
                truncate(path, to: page + 10)  // reservation pages 4 and 5 (partly) are backed

                let expected = pattern(4 * page)
                #expect(try reservation.guardedLoad(fromByteOffset: 4 * page + 5, as: UInt8.self) == expected[5])
                let load = expectMmapError(.fault, errno: EFAULT) { () throws(MmapError) in
                    _ = try reservation.guardedLoad(fromByteOffset: 6 * page + 16, as: UInt32.self)
                }
                #expect(load?.faultOffset == 6 * page + 16)
                let store = expectMmapError(.fault) { () throws(MmapError) in
                    try reservation.guardedStore(UInt8(1), toByteOffset: 7 * page)
                }
                #expect(store?.faultOffset == 7 * page)
                let prefault = expectMmapError(.fault) { () throws(MmapError) in
                    try reservation.guardedPrefault(range: (4 * page)..<(8 * page))
                }
                #expect(prefault?.faultOffset == 6 * page)
            }
        }

        @Test func aReservationRefusesUncommittedBytesBeforeTouchingThem() throws {
            try expectNoLeaks { () throws(MmapError) in
                var reservation = try MmapReservation(count: 16 * page)
                try reservation.commit(0..<(2 * page))
                try reservation.commit((2 * page)..<(3 * page))
                // Adjacent commits read as one range; a value may straddle them.
                try reservation.guardedStore(UInt64(0x0102_0304_0506_0708), toByteOffset: 2 * page - 4)
                #expect(
                    try reservation.guardedLoad(fromByteOffset: 2 * page - 4, as: UInt64.self) == 0x0102_0304_0506_0708
                )
                try reservation.guardedStoreBytes([9, 8, 7], toByteOffset: 10)
                #expect(try reservation.guardedBytes(10..<13) == [9, 8, 7])
                try reservation.guardedPrefault(range: 0..<(3 * page))

                // Every one of these would raise SIGSEGV if a byte were touched: they must throw first.
                let uncommitted = expectMmapError(.outOfBounds) { () throws(MmapError) in
                    _ = try reservation.guardedLoad(fromByteOffset: 5 * page, as: UInt8.self)
                }
                #expect(uncommitted?.operation == .access)
                #expect(uncommitted?.errno == 0)
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    _ = try reservation.guardedBytes((3 * page - 4)..<(3 * page + 4))
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    try reservation.guardedStore(UInt32(1), toByteOffset: 3 * page - 2)
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    try reservation.guardedStoreBytes([1, 2], toByteOffset: 16 * page - 1)
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    _ = try reservation.guardedLoad(fromByteOffset: -1, as: UInt8.self)
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in try reservation.guardedPrefault() }
                var target = [UInt8](repeating: 0, count: 8)
                var elements = target.mutableSpan
                var span = unsafe elements.mutableBytes
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    try reservation.guardedCopyBytes(fromByteOffset: 3 * page - 4, into: &span)
                }
                try reservation.guardedCopyBytes(fromByteOffset: 10, into: &span)
                #expect(target[0..<3] == [9, 8, 7])

                // Decommitted pages are refused again.
                try reservation.decommit((2 * page)..<(3 * page))
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    _ = try reservation.guardedLoad(fromByteOffset: 2 * page, as: UInt8.self)
                }
                #expect(reservation.count == 16 * page)
            }
        }

        @Test func aMirroredRingRoundTripsAcrossTheWrap() throws {
            try expectNoLeaks { () throws(MmapError) in
                var ring = try MmapMirroredRing(capacity: page)
                #expect(ring.count == page)
                try ring.guardedStore(UInt64(0x0102_0304_0506_0708), toByteOffset: page - 3)
                #expect(try ring.guardedLoad(fromByteOffset: page - 3, as: UInt64.self) == 0x0102_0304_0506_0708)
                // Little-endian: the last 5 bytes of the value wrapped to the ring's start.
                #expect(try ring.guardedBytes(0..<5) == [0x05, 0x04, 0x03, 0x02, 0x01])
                let message = (0..<100).map { UInt8($0) }
                try ring.guardedStoreBytes(message, toByteOffset: page - 50)
                #expect(try ring.guardedBytes((page - 50)..<(page + 50)) == message)
                #expect(try ring.guardedBytes(0..<50) == Array(message[50...]))
                #expect(try array(ring.bytes(from: page - 50, count: 100)) == message)
                var target = [UInt8](repeating: 0, count: page)
                var elements = target.mutableSpan
                var span = unsafe elements.mutableBytes
                try ring.guardedCopyBytes(fromByteOffset: page - 50, into: &span)
                #expect(Array(target[0..<100]) == message)
                try ring.guardedPrefault()
                try ring.guardedPrefault(range: (page - 1)..<(2 * page - 1))
            }
        }

        @Test func aMirroredRingRefusesWindowsThatDoNotFit() throws {
            try expectNoLeaks { () throws(MmapError) in
                var ring = try MmapMirroredRing(capacity: page)
                for (offset, count) in [(page, 1), (-1, 1), (0, page + 1), (page - 1, page + 1), (Int.max - 1, 1)] {
                    let error = expectMmapError(.outOfBounds) { () throws(MmapError) in
                        _ = try ring.guardedBytes(offset..<(offset + count))
                    }
                    #expect(error?.operation == .access)
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    _ = try ring.guardedLoad(fromByteOffset: page, as: UInt8.self)
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    try ring.guardedStoreBytes([UInt8](repeating: 1, count: page + 1), toByteOffset: 0)
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    try ring.guardedPrefault(range: 0..<(page + 1))
                }
                // Nothing was written by the refused calls.
                #expect(try ring.guardedBytes(0..<page) == [UInt8](repeating: 0, count: page))
            }
        }

        @Test(.enabled(if: _MmapFaultInjection.isAvailable, "fault injection exists in debug builds"))
        func failedSystemCallsLeaveGuardedAccessToWhatIsStillMapped() throws {
            let path = directory.makeFile("failures", count: 2 * page)
            let fd = openFile(path, O_RDWR)
            defer { close(fd) }
            _MmapFaultInjection.reset()
            defer { _MmapFaultInjection.reset() }
            try expectNoLeaks { () throws(MmapError) in
                var file = try MmapGrowableFile(fileDescriptor: fd, capacity: 8 * page)
                let last = pattern(2 * page)[2 * page - 1]
                for (call, errno, code) in [
                    (_MmapFaultInjection.Call.fstat, EIO, MmapError.Code.system),
                    (.fallocate, ENOSPC, .noSpace),
                    (.mmapInPlace, ENOMEM, .outOfMemory),
                ] {
                    _MmapFaultInjection.inject(call, errno: errno)
                    let error = expectMmapError(code, errno: errno) { () throws(MmapError) in
                        try file.grow(to: 4 * page)
                    }
                    #expect(
                        error?.message.contains("descriptor") == true || call == .mmapInPlace,
                        "\(String(describing: error))"
                    )
                    #expect(file.count == 2 * page)
                    #expect(try file.guardedLoad(fromByteOffset: 2 * page - 1, as: UInt8.self) == last)
                    expectMmapError(.outOfBounds) { () throws(MmapError) in
                        _ = try file.guardedLoad(fromByteOffset: 2 * page, as: UInt8.self)
                    }
                }
                try file.grow(to: 4 * page)
                #expect(try file.guardedLoad(fromByteOffset: 4 * page - 1, as: UInt8.self) == 0)

                var reservation = try MmapReservation(count: 4 * page)
                _MmapFaultInjection.inject(.mmapInPlace, errno: ENOMEM)
                expectMmapError(.outOfMemory) { () throws(MmapError) in try reservation.commit(0..<page) }
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    _ = try reservation.guardedLoad(fromByteOffset: 0, as: UInt8.self)
                }
                _MmapFaultInjection.inject(.fstat, errno: EBADF)
                let stat = expectMmapError(.system, errno: EBADF) { () throws(MmapError) in
                    try reservation.commit(0..<page, fileDescriptor: fd, fileOffset: 0)
                }
                #expect(stat?.operation == .stat)
                #expect(reservation.committedRanges.isEmpty)

                for (call, errno, code) in [
                    (_MmapFaultInjection.Call.memfdCreate, EMFILE, MmapError.Code.system),
                    (.ftruncate, EIO, .system),
                    (.addSeals, EPERM, .permissionDenied),
                    (.mmap, ENOMEM, .outOfMemory),
                    (.mmapInPlace, ENOMEM, .outOfMemory),
                ] {
                    _MmapFaultInjection.inject(call, errno: errno)
                    expectMmapError(code, errno: errno) { () throws(MmapError) in
                        _ = try MmapMirroredRing(capacity: page)
                    }
                }
                var ring = try MmapMirroredRing(capacity: page)
                try ring.guardedStore(UInt16(0xABCD), toByteOffset: page - 1)
                #expect(try ring.guardedLoad(fromByteOffset: page - 1, as: UInt16.self) == 0xABCD)
            }
        }

        @Test(.disabled(if: runningUnderThreadSanitizer, "TSan cannot recover from SIGBUS"))
        func arraysPairWithArraysOnEveryMutableHandle() throws {
            let path = directory.makeFile("pairs", count: 4 * page)
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(path: path)
                let bytes: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF]
                try map.guardedStoreBytes(bytes, toByteOffset: page - 2)
                #expect(try map.guardedBytes((page - 2)..<(page + 2)) == bytes)
                try map.guardedStoreBytes([], toByteOffset: 4 * page)
                let before = try map.guardedBytes((4 * page - 2)..<(4 * page))
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    try map.guardedStoreBytes(bytes, toByteOffset: 4 * page - 2)
                }
                #expect(try map.guardedBytes((4 * page - 2)..<(4 * page)) == before)
                truncate(path, to: page)
                let fault = expectMmapError(.fault) { () throws(MmapError) in
                    try map.guardedStoreBytes(bytes, toByteOffset: 2 * page + 1)
                }
                #expect(fault?.faultOffset == 2 * page + 1)
                var view = map.share()
                try view.guardedStoreBytes([1, 2], toByteOffset: 0)
                #expect(try view.guardedBytes(0..<2) == [1, 2])
            }
        }
    }
}
