import Foundation
import Glibc
import MmapKit
import Testing

extension MmapKitTests {
    @Suite struct MmapOptionsTests {
        let directory = TemporaryDirectory()

        @Test func populateNoReserveStackAndAdviceMapNormally() throws {
            let path = directory.makeFile("data", count: 100_000)
            try expectNoLeaks { () throws(MmapError) in
                let populated = try Mmap(path: path, options: .init().populate().advice(.sequential))
                #expect(array(populated.bytes) == pattern(100_000))
                var stack = try MutableMmap(anonymous: 1 << 20, options: .init().stack().noReserve())
                var bytes = stack.mutableBytes
                bytes.storeBytes(of: 1, toByteOffset: (1 << 20) - 1, as: UInt8.self)
                let flags = MmapOptions().populate().noReserve().stack().lock().mapSync().advice(.random)
                #expect(flags.populate && flags.noReserve && flags.stack && flags.lock && flags.mapSync)
                #expect(flags.advice == .random)
            }
        }

        @Test func transparentHugePagesAreAdvised() throws {
            try expectNoLeaks { () throws(MmapError) in
                var map = try MutableMmap(anonymous: 8 << 20, options: .init().hugePages(.transparent))
                #expect(map.count == 8 << 20)
                var bytes = map.mutableBytes
                bytes.storeBytes(of: 1, toByteOffset: 0, as: UInt8.self)
            }
        }

        @Test func explicitHugePagesWithNoneReservedAreAClearError() throws {
            // This machine reserves no hugetlbfs pages (HugePages_Total: 0); where some are
            // reserved the mapping succeeds and its count stays what was asked for.
            try expectNoLeaks { () throws(MmapError) in
                do throws(MmapError) {
                    let map = try MutableMmap(anonymous: 4096, options: .init().hugePages(.explicit2MiB))
                    #expect(map.count == 4096)
                } catch {
                    #expect(error.code == .unsupported && error.errno == ENOMEM)
                    #expect(error.message.contains("nr_hugepages"))
                }
            }
        }

        @Test func explicitHugePagesOnARegularFileAreRefused() {
            let path = directory.makeFile("data", count: 4096)
            expectNoLeaks {
                expectMmapError(.unsupported, errno: EINVAL) { () throws(MmapError) in
                    _ = try Mmap(path: path, options: .init().hugePages(.explicit2MiB))
                }
                expectMmapError(.invalidArgument, errno: 0) { () throws(MmapError) in
                    _ = try Mmap(path: path, offset: 4096, count: 1, options: .init().hugePages(.explicit2MiB))
                }
            }
        }

        @Test func hugePageSizes() throws {
            #expect(MmapOptions.HugePages.explicit2MiB.explicitPageSize == 2 << 20)
            #expect(MmapOptions.HugePages.explicit1GiB.explicitPageSize == 1 << 30)
            #expect(try MmapOptions.HugePages.explicit(log2: 16).explicitPageSize == 65536)
            #expect(MmapOptions.HugePages.transparent.explicitPageSize == nil)
        }

        @Test func lockWithinTheLimitSucceeds() throws {
            try expectNoLeaks { () throws(MmapError) in
                let map = try MutableMmap(anonymous: 64 * 1024, options: .init().lock())
                #expect(map.count == 64 * 1024)
            }
        }

        @Test func lockBeyondTheLimitFailsNamingItAndLeavesNothingMapped() throws {
            var limit = rlimit()
            #expect(unsafe getrlimit(RLIMIT_MEMLOCK_VALUE, &limit) == 0)
            let saved = limit
            // Lower the soft limit for this test so that it holds for root too... root has
            // CAP_IPC_LOCK, which ignores the limit; then locking succeeds and that is asserted.
            limit.rlim_cur = 1 << 20
            #expect(unsafe setrlimit(RLIMIT_MEMLOCK_VALUE, &limit) == 0)
            defer { _ = unsafe withUnsafePointer(to: saved) { unsafe setrlimit(RLIMIT_MEMLOCK_VALUE, $0) } }
            let calls = countingCalls {
                do throws(MmapError) {
                    _ = try MutableMmap(anonymous: 16 << 20, options: .init().lock())
                    #expect(hasCapability(ipcLock: true), "locking 16 MiB past a 1 MiB limit succeeded")
                } catch {
                    #expect(error.code == .lockLimit)
                    #expect(error.message.contains("RLIMIT_MEMLOCK is 1048576 bytes"), "\(error)")
                }
            }
            #expect(calls.maps == calls.unmaps)
        }

        @Test func mapSyncOnARegularFileIsUnsupported() {
            let path = directory.makeFile("data", count: 4096)
            expectNoLeaks {
                let error = expectMmapError(.unsupported, errno: EOPNOTSUPP) { () throws(MmapError) in
                    _ = try MutableMmap(path: path, options: .init().mapSync())
                }
                #expect(error?.description.contains("EOPNOTSUPP") == true)
                expectMmapError(.invalidArgument) { () throws(MmapError) in
                    _ = try MutableMmap(path: path, sharing: .private, options: .init().mapSync())
                }
                expectMmapError(.invalidArgument) { () throws(MmapError) in
                    _ = try MutableMmap(anonymous: 4096, options: .init().mapSync())
                }
            }
        }
    }
}

/// RLIMIT_MEMLOCK as the CInt that getrlimit takes on Linux.
let RLIMIT_MEMLOCK_VALUE = __rlimit_resource_t(__RLIMIT_MEMLOCK.rawValue)

/// Whether the process has CAP_IPC_LOCK (which lets it lock past RLIMIT_MEMLOCK), read from
/// /proc/self/status.
func hasCapability(ipcLock: Bool) -> Bool {
    let status = String(decoding: readFile("/proc/self/status"), as: UTF8.self)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
        let mask = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
    else { return false }
    return mask & (1 << 14) != 0  // CAP_IPC_LOCK
}
