// A plain swiftc program that uses an installed MmapKit (found with pkg-config): it writes a file
// through a shared mapping, flushes, maps it again read-only and sums it through a span.
import Glibc
import MmapKit

/// Sums the bytes of a mapping through its span.
func byteSum(_ map: borrowing Mmap) -> Int {
    let bytes = map.bytes
    var sum = 0
    for i in 0..<bytes.byteCount { sum += Int(unsafe bytes.unsafeLoad(fromByteOffset: i, as: UInt8.self)) }
    return sum
}

/// Fills `path` (4 KiB) with bytes 0, 1, ..., 255, 0, 1, ... through a shared mapping.
func fill(_ path: String) throws(MmapError) {
    let fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0o644)
    precondition(fd >= 0 && ftruncate(fd, 4096) == 0, "cannot create \(path)")
    defer { close(fd) }
    var writable = try MutableMmap(fileDescriptor: fd)
    var bytes = writable.mutableBytes
    for i in 0..<4096 { bytes.storeBytes(of: UInt8(i % 256), toByteOffset: i, as: UInt8.self) }
    try writable.flush()
}

func main() -> Int32 {
    let path = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "/tmp/mmapkit-make-consumer-\(getpid())"
    defer { unlink(path) }
    do {
        try fill(path)
        let map = try Mmap(path: path)
        print("mapped \(map.count) bytes, byte sum \(byteSum(map))")
        return 0
    } catch {
        print("error: \(error)")
        return 1
    }
}

exit(main())
