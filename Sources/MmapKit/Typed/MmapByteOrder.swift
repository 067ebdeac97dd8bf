/// The order of the bytes of a multi-byte value in memory or in a file.
///
/// File formats fix one (network protocols and many headers are big-endian; most databases and
/// every CPU Linux runs Swift on are little-endian), so MmapKit's loads and stores take it
/// explicitly. ``native`` is the order of this CPU, which a typed span (`Span<UInt64>`) uses.
@frozen
public enum MmapByteOrder: Sendable, Hashable {
    /// Least significant byte first (x86-64, AArch64 as Linux runs it).
    case littleEndian
    /// Most significant byte first ("network byte order").
    case bigEndian

    /// The byte order of this CPU.
    @inlinable
    public static var native: MmapByteOrder {
        #if _endian(little)
        .littleEndian
        #else
        .bigEndian
        #endif
    }
}
