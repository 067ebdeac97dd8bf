import Glibc
import MmapKit
import SystemPackage

/// Writes 4096 bytes through a `FileDescriptor` to a file whose name is not UTF-8 (`caf\xe9`:
/// Latin-1), maps it by `FilePath` (its bytes reach open(2) unchanged) and by descriptor.
func demo() throws -> String {
    let name: [UInt8] = Array("/tmp/mmapkit-caf".utf8) + [0xE9] + Array("-\(getpid()).bin".utf8)
    let path = (name.map { CChar(bitPattern: $0) } + [0]).withUnsafeBufferPointer {
        FilePath(platformString: $0.baseAddress!)
    }
    let fd = try FileDescriptor.open(
        path,
        .readWrite,
        options: [.create, .exclusiveCreate],
        permissions: .ownerReadWrite
    )
    defer {
        try? fd.close()
        _ = path.withPlatformString { unlink($0) }
    }
    _ = try fd.writeAll((0..<4096).map { UInt8(truncatingIfNeeded: $0) })

    let byPath = try Mmap(path: path)
    let byDescriptor = try Mmap(fileDescriptor: fd, offset: 4000)
    let sum = byPath.bytes.withUnsafeBytes { $0.reduce(0) { $0 + Int($1) } }
    return "mapped \(byPath.count) bytes by a FilePath that is not UTF-8 (caf\\xe9), byte sum \(sum); "
        + "\(byDescriptor.count) by a FileDescriptor"
}

print(try demo())
