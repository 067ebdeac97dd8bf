import Foundation
import MmapKit
import Testing

extension MmapKitTests {
    @Suite struct ReadmeExampleTests {
        let directory = TemporaryDirectory()

        /// The README's example, verbatim between the markers (checked by the test below), so
        /// that it is run, not only compiled: `make snippets` compiles the README's own copy.
        func readmeExample(path: String) throws(MmapError) -> UInt64 {
            // README-EXAMPLE-BEGIN
            // Read a file: a safe load at a byte offset, in the file's byte order.
            let map = try Mmap(path: path)
            let first = map.load(fromByteOffset: 0, as: UInt64.self, byteOrder: .littleEndian)

            // Write through a shared mapping, then make the write durable.
            var log = try MutableMmap(path: path, count: 8)
            log.store(first &+ 1, toByteOffset: 0, byteOrder: .littleEndian)
            try log.flush()
            // README-EXAMPLE-END
            return first
        }

        @Test func theExampleRuns() throws {
            let path = directory.makeFile("data", bytes: [41, 0, 0, 0, 0, 0, 0, 0, 9])
            let first = try expectNoLeaks { () throws(MmapError) in try readmeExample(path: path) }
            #expect(first == 41)
            #expect(readFile(path) == [42, 0, 0, 0, 0, 0, 0, 0, 9])
        }

        @Test func theReadmeShowsTheTestedExample() throws {
            func block(in text: String) -> [String] {
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
                    $0.trimmingCharacters(in: .whitespaces)
                }
                guard let begin = lines.firstIndex(where: { $0.hasSuffix("README-EXAMPLE-BEGIN") }),
                    let end = lines.firstIndex(where: { $0.hasSuffix("README-EXAMPLE-END") })
                else { return [] }
                return Array(lines[(begin + 1)..<end])
            }
            let testFile = URL(fileURLWithPath: #filePath)
            let root = testFile.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
            let source = try String(contentsOf: testFile, encoding: .utf8)
            let shown = block(in: readme)
            #expect(!shown.isEmpty)
            #expect(shown == block(in: source))
        }
    }
}
