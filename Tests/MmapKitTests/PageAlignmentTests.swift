import Testing

@testable import MmapKit

extension MmapKitTests {
    @Suite struct PageAlignmentTests {
        @Test func alignsDownToTheStartOfThePage() {
            #expect(PageAlignment.alignDown(0, to: 4096) == 0)
            #expect(PageAlignment.alignDown(1, to: 4096) == 0)
            #expect(PageAlignment.alignDown(4095, to: 4096) == 0)
            #expect(PageAlignment.alignDown(4096, to: 4096) == 4096)
            #expect(PageAlignment.alignDown(8191, to: 4096) == 4096)
            #expect(PageAlignment.alignDown(Int.max, to: 4096) == Int.max - 4095)
            #expect(PageAlignment.alignDown(Int64.max, to: Int64(1) << 30) == Int64.max - (1 << 30) + 1)
            #expect(PageAlignment.alignDown(UInt.max, to: 4096) == UInt.max - 4095)
            #expect(PageAlignment.alignDown(12345, to: 1) == 12345)
        }

        @Test func alignsUpToTheEndOfThePageOrReportsOverflow() {
            #expect(PageAlignment.alignUp(0, to: 4096) == 0)
            #expect(PageAlignment.alignUp(1, to: 4096) == 4096)
            #expect(PageAlignment.alignUp(4096, to: 4096) == 4096)
            #expect(PageAlignment.alignUp(4097, to: 4096) == 8192)
            #expect(PageAlignment.alignUp(Int.max - 4095, to: 4096) == Int.max - 4095)
            #expect(PageAlignment.alignUp(Int.max - 4094, to: 4096) == nil)
            #expect(PageAlignment.alignUp(Int.max, to: 4096) == nil)
            #expect(PageAlignment.alignUp(Int.max, to: 1) == Int.max)
            // The largest power of two an Int holds: 0 and itself round to themselves, anything
            // else between overflows.
            let huge = 1 << (Int.bitWidth - 2)
            #expect(PageAlignment.alignUp(0, to: huge) == 0)
            #expect(PageAlignment.alignUp(1, to: huge) == huge)
            #expect(PageAlignment.alignUp(huge, to: huge) == huge)
            #expect(PageAlignment.alignUp(huge + 1, to: huge) == nil)
            #expect(PageAlignment.alignUp(UInt.max, to: 2) == nil)
            #expect(PageAlignment.alignUp(Int64(5) << 30, to: Int64(1) << 30) == Int64(5) << 30)
        }

        @Test func tellsAlignedValues() {
            #expect(PageAlignment.isAligned(0, to: 4096))
            #expect(PageAlignment.isAligned(4096, to: 4096))
            #expect(PageAlignment.isAligned(3 << 21, to: 1 << 21))
            #expect(!PageAlignment.isAligned(1, to: 4096))
            #expect(!PageAlignment.isAligned(4095, to: 4096))
            #expect(!PageAlignment.isAligned(Int.max, to: 4096))
            #expect(PageAlignment.isAligned(Int.max, to: 1))
            #expect(PageAlignment.isAligned(Int.min, to: 1 << (Int.bitWidth - 2)))
            #expect(!PageAlignment.isAligned(Int64(4096) + 1, to: 4096))
        }

        @Test func aNonPowerOfTwoAlignmentTraps() async {
            await #expect(processExitsWith: .failure) {
                _ = PageAlignment.alignUp(10, to: 3000)
            }
        }
    }
}
