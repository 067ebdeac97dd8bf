import MmapKit

/// Anonymous memory written through a span, shared into two views, read back with a guarded load.
func demo() throws(MmapError) -> String {
    var map = try MutableMmap(anonymous: 1 << 16)
    var bytes = map.mutableBytes
    for i in 0..<(1 << 16) { bytes.storeBytes(of: UInt8(truncatingIfNeeded: i), toByteOffset: i, as: UInt8.self) }
    var head = map.share()
    let tail = try head.split(at: 1 << 15)
    let last = try tail.guardedLoad(fromByteOffset: tail.count - 1, as: UInt8.self)
    return "views of \(head.count) and \(tail.count) bytes; last byte \(last)"
}

print(try demo())
