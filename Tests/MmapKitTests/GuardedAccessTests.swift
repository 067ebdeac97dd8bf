import CMmapShim
import Dispatch
import Foundation
import Glibc
import MmapKit
import Testing

private let page = Int(sysconf(Int32(_SC_PAGESIZE)))

/// Creates a 16-page file of the test pattern in `directory`, maps it, and truncates it to
/// 4 pages + 100 bytes: page 4 is still partly backed, pages 5 to 15 are lost.
func truncatedFileMapping(
    in directory: TemporaryDirectory,
    by truncate: (String) -> Void
) throws(MmapError)
    -> Mmap
{
    let path = directory.makeFile("data", count: 16 * page)
    let map = try Mmap(path: path)
    truncate(path)
    return map
}

let survivingBytes = 4 * page + 100

/// Truncates `path` through a second descriptor.
func truncateThroughAnotherDescriptor(_ path: String) {
    let fd = openFile(path, O_RDWR)
    precondition(ftruncate(fd, off_t(survivingBytes)) == 0)
    close(fd)
}

extension MmapKitTests {
    @Suite struct GuardedAccessTests {
        let directory = TemporaryDirectory()

        @Test(.disabled(if: runningUnderThreadSanitizer, "TSan cannot recover from SIGBUS"))
        func guardedReadsOfLostPagesThrowAndBackedPagesRead() throws {
            try expectNoLeaks { () throws(MmapError) in
                let map = try truncatedFileMapping(in: directory, by: truncateThroughAnotherDescriptor)
                let expected = pattern(16 * page)
                for iteration in 0..<1000 {
                    let good = iteration % survivingBytes
                    #expect(try map.guardedLoad(fromByteOffset: good, as: UInt8.self) == expected[good])
                    let lost = 5 * page + (iteration * 37) % (11 * page - 8)
                    let error = expectMmapError(.fault, errno: EFAULT) { () throws(MmapError) in
                        _ = try map.guardedLoad(fromByteOffset: lost, as: UInt64.self)
                    }
                    #expect(error?.faultOffset == lost)
                    #expect(error?.operation == .access)
                }
                // The tail of page 4 past the new end reads as zeros; a copy across into page 5 faults there.
                #expect(
                    try map.guardedBytes((4 * page)..<(5 * page)) == Array(expected[(4 * page)..<survivingBytes])
                        + [UInt8](repeating: 0, count: 5 * page - survivingBytes)
                )
                let across = expectMmapError(.fault) { () throws(MmapError) in
                    _ = try map.guardedBytes((5 * page - 10)..<(5 * page + 10))
                }
                #expect(across?.faultOffset == 5 * page)
                let prefault = expectMmapError(.fault) { () throws(MmapError) in try map.guardedPrefault() }
                #expect(prefault?.faultOffset == 5 * page)
                try map.guardedPrefault(range: 0..<survivingBytes)
            }
        }

        @Test(.disabled(if: runningUnderThreadSanitizer, "TSan cannot recover from SIGBUS"))
        func guardedWritesToLostPagesThrow() throws {
            let path = directory.makeFile("data", count: 8 * page)
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(path: path)
                #expect(unsafe truncate(path, off_t(2 * page)) == 0)
                try map.guardedStore(UInt32(0xDEAD_BEEF), toByteOffset: 100)
                #expect(try map.guardedLoad(fromByteOffset: 100, as: UInt32.self) == 0xDEAD_BEEF)
                let error = expectMmapError(.fault) { () throws(MmapError) in
                    try map.guardedStore(UInt64(1), toByteOffset: 3 * page + 8)
                }
                #expect(error?.faultOffset == 3 * page + 8)
                let bytes: [UInt8] = [1, 2, 3, 4]
                expectMmapError(.fault) { () throws(MmapError) in
                    try unsafe map.guardedStoreBytes(bytes.span.bytes, toByteOffset: 4 * page)
                }
                try unsafe map.guardedStoreBytes(bytes.span.bytes, toByteOffset: 2 * page - 4)
                #expect(try map.guardedBytes((2 * page - 4)..<(2 * page)) == bytes)
            }
        }

        @Test(.disabled(if: runningUnderThreadSanitizer, "TSan cannot recover from SIGBUS"))
        func aChildProcessTruncatingTheFileIsCaught() throws {
            try expectNoLeaks { () throws(MmapError) in
                let map = try truncatedFileMapping(in: directory) { path in
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: "/usr/bin/truncate")
                    process.arguments = ["-s", "\(survivingBytes)", path]
                    try! process.run()
                    process.waitUntilExit()
                    precondition(process.terminationStatus == 0)
                }
                for _ in 0..<1000 {
                    expectMmapError(.fault) { () throws(MmapError) in
                        _ = try map.guardedLoad(fromByteOffset: 6 * page, as: UInt16.self)
                    }
                    #expect(try map.guardedLoad(fromByteOffset: 1, as: UInt8.self) == pattern(2)[1])
                }
            }
        }

        @Test(.disabled(if: runningUnderThreadSanitizer, "TSan cannot recover from SIGBUS"))
        func threadsReadGoodPagesWhileOneFaults() throws {
            try expectNoLeaks { () throws(MmapError) in
                var good = try truncatedFileMapping(in: directory, by: truncateThroughAnotherDescriptor).share()
                let bad = try good.split(at: 4 * page)
                let group = DispatchGroup()
                let failures = Counter()
                let faults = Counter()
                let expected = pattern(4 * page)
                let badShared = Transfer(bad)
                let reader = SharedReader(good)
                group.enter()
                Thread.detach {
                    let view = badShared.take()
                    for i in 0..<2000 {
                        do throws(MmapError) {
                            _ = try view.guardedLoad(fromByteOffset: (i * 64) % (view.count - 8), as: UInt64.self)
                            if (i * 64) % (view.count - 8) >= page { failures.add() }  // page 4+1 is lost
                        } catch {
                            if error.code == .fault { faults.add() } else { failures.add() }
                        }
                    }
                    group.leave()
                }
                for _ in 0..<3 {
                    group.enter()
                    Thread.detach {
                        for i in 0..<2000 {
                            let offset = (i * 31) % (4 * page)
                            do {
                                if try reader.load(offset) != expected[offset] { failures.add() }
                            } catch { failures.add() }
                        }
                        group.leave()
                    }
                }
                group.wait()
                #expect(failures.value == 0)
                #expect(faults.value > 0)
            }
        }

        @Test func boundsAreCheckedBeforeAnyAccess() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 100)
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    _ = try map.guardedLoad(fromByteOffset: 93, as: UInt64.self)
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    _ = try map.guardedLoad(fromByteOffset: -1, as: UInt8.self)
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in _ = try map.guardedBytes(90..<101) }
                expectMmapError(.outOfBounds) { () throws(MmapError) in
                    try map.guardedStore(UInt16(1), toByteOffset: 99)
                }
                expectMmapError(.outOfBounds) { () throws(MmapError) in try map.guardedPrefault(range: 0..<101) }
                // Unaligned values round-trip; odd-sized data goes through the byte calls (a struct
                // is no MmapScalar: it may have padding or invalid bit patterns).
                try map.guardedStore(UInt64(0x0102_0304_0506_0708), toByteOffset: 3)
                #expect(try map.guardedLoad(fromByteOffset: 3, as: UInt64.self) == 0x0102_0304_0506_0708)
                try map.guardedStoreBytes([7, 8, 9], toByteOffset: 50)
                #expect(try map.guardedBytes(50..<53) == [7, 8, 9])
                var buffer = [UInt8](repeating: 0, count: 8)
                var elements = buffer.mutableSpan
                var span = unsafe elements.mutableBytes
                try map.guardedCopyBytes(fromByteOffset: 3, into: &span)
                #expect(buffer == [8, 7, 6, 5, 4, 3, 2, 1])
                #expect(try map.guardedBytes(0..<0) == [])
            }
        }

        @Test(.disabled(if: runningUnderThreadSanitizer, "TSan cannot recover from SIGBUS"))
        func anUnguardedTouchOfALostPageStillKillsTheProcess() async {
            await #expect(processExitsWith: runningUnderSanitizer ? .failure : .signal(SIGBUS)) {
                let directory = TemporaryDirectory()
                let map = try truncatedFileMapping(in: directory, by: truncateThroughAnotherDescriptor)
                _ = try map.guardedLoad(fromByteOffset: 0, as: UInt8.self)  // install the handler
                _ = try? map.guardedLoad(fromByteOffset: 8 * page, as: UInt8.self)  // a caught fault
                let value = unsafe map.bytes.unsafeLoad(fromByteOffset: 8 * page, as: UInt8.self)
                print("unreachable: read \(value)")
            }
        }

        @Test(.disabled(if: runningUnderThreadSanitizer, "TSan cannot recover from SIGBUS"))
        func aFaultOutsideTheArmedRangeIsNotSwallowed() async {
            await #expect(processExitsWith: runningUnderSanitizer ? .failure : .signal(SIGBUS)) {
                let directory = TemporaryDirectory()
                let armed = try MutableMmap(anonymous: page)
                let lost = try truncatedFileMapping(in: directory, by: truncateThroughAnotherDescriptor)
                var target = [UInt8](repeating: 0, count: 8)
                var fault: UnsafeMutableRawPointer? = nil
                // Arm the guard on `armed` while copying from a lost page of `lost`.
                unsafe armed.withUnsafeBytes { armedBytes in
                    unsafe lost.withUnsafeBytes { lostBytes in
                        _ = unsafe CMmapShim_guardedCopy(
                            &target,
                            lostBytes.baseAddress! + 8 * page,
                            8,
                            armedBytes.baseAddress,
                            page,
                            &fault
                        )
                    }
                }
                print("unreachable: the foreign fault was swallowed")
            }
        }

        @Test(.disabled(if: runningUnderThreadSanitizer, "TSan cannot recover from SIGBUS"))
        func aForeignFaultReachesAHandlerInstalledBefore() async {
            await #expect(processExitsWith: .exitCode(42)) {
                installExitingSIGBUSHandler()
                let directory = TemporaryDirectory()
                let map = try truncatedFileMapping(in: directory, by: truncateThroughAnotherDescriptor)
                _ = try? map.guardedLoad(fromByteOffset: 8 * page, as: UInt8.self)  // installs, catches
                // Use the value, or the optimizer drops the load (and the fault) in release builds.
                let value = unsafe map.bytes.unsafeLoad(fromByteOffset: 9 * page, as: UInt8.self)
                _exit(value == 0 ? 0 : 1)
            }
        }

        @Test(.disabled(if: runningUnderThreadSanitizer, "TSan cannot recover from SIGBUS"))
        func aForeignFaultReachesASigInfoHandlerInstalledBefore() async {
            await #expect(processExitsWith: .exitCode(43)) {
                installSigInfoSIGBUSHandler()
                let directory = TemporaryDirectory()
                let map = try truncatedFileMapping(in: directory, by: truncateThroughAnotherDescriptor)
                _ = try? map.guardedLoad(fromByteOffset: 8 * page, as: UInt8.self)
                // Use the value, or the optimizer drops the load (and the fault) in release builds.
                let value = unsafe map.bytes.unsafeLoad(fromByteOffset: 9 * page, as: UInt8.self)
                _exit(value == 0 ? 0 : 1)
            }
        }
    }
}

/// A read-only view shared by reference among reader threads (reads need no exclusivity).
final class SharedReader: Sendable {
    let view: MmapView
    init(_ view: consuming MmapView) { self.view = view }
    func load(_ offset: Int) throws(MmapError) -> UInt8 { try view.guardedLoad(fromByteOffset: offset, as: UInt8.self) }
}

/// Installs a SIGBUS handler (sa_handler) that exits with status 42.
private func installExitingSIGBUSHandler() {
    var action = sigaction()
    unsafe action.__sigaction_handler.sa_handler = { _ in _exit(42) }
    precondition(unsafe sigaction(SIGBUS, &action, nil) == 0)
}

/// Installs a SIGBUS handler (sa_sigaction) that exits with 43 for BUS_ADRERR, 44 otherwise.
private func installSigInfoSIGBUSHandler() {
    var action = sigaction()
    unsafe action.__sigaction_handler.sa_sigaction = { _, info, _ in
        _exit(unsafe info!.pointee.si_code == 2 ? 43 : 44)  // 2: BUS_ADRERR
    }
    action.sa_flags = SA_SIGINFO
    precondition(unsafe sigaction(SIGBUS, &action, nil) == 0)
}
