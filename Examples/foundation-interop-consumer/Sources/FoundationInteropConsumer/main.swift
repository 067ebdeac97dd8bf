import Foundation
import MmapKit

/// Writes 4096 bytes through a `FileHandle`, maps the file by that handle, and hands the mapping
/// to a `Data` without copying it: the `Data` unmaps it when it is released.
func demo() throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("mmapkit-foundation-\(getpid()).bin")
    try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0) }).write(to: url)
    defer { try? FileManager.default.removeItem(at: url) }
    let handle = try FileHandle(forReadingFrom: url)
    defer { try? handle.close() }

    let map = try Mmap(fileHandle: handle, sharing: .private)
    let address = map.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
    let data = try Data(mapping: map)  // consumes the handle: no copy, one unmap
    let sameBytes = data.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) } == address
    let sum = data.reduce(0) { $0 + Int($1) }
    return "Data of \(data.count) bytes over the mapping (no copy: \(sameBytes)), byte sum \(sum)"
}

print(try demo())
