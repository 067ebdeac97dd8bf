/// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78), the checksum of iSCSI,
/// ext4 metadata, RocksDB and LevelDB logs, computed in Swift with slicing-by-8 tables.
///
/// The function is chainable: `update(crc32c(a), b) == crc32c(a + b)`, which is how a record's
/// checksum continues from its predecessor's (see `RecordFrame`).
public enum CRC32C {
    /// The CRC of no bytes.
    public static let empty: UInt32 = 0

    /// Continues `crc` over `bytes`.
    ///
    /// - Complexity: O(`bytes.count`), about 8 bytes per table round.
    @inlinable
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c = ~crc
        var count = bytes.count
        guard var p = bytes.baseAddress else { return crc }
        let t = tables
        return t.withUnsafeBufferPointer { t -> UInt32 in
            while count >= 8 {
                let word = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)) ^ UInt64(c)
                c =
                    t[7 &* 256 &+ Int(word & 0xFF)]
                    ^ t[6 &* 256 &+ Int((word >> 8) & 0xFF)]
                    ^ t[5 &* 256 &+ Int((word >> 16) & 0xFF)]
                    ^ t[4 &* 256 &+ Int((word >> 24) & 0xFF)]
                    ^ t[3 &* 256 &+ Int((word >> 32) & 0xFF)]
                    ^ t[2 &* 256 &+ Int((word >> 40) & 0xFF)]
                    ^ t[1 &* 256 &+ Int((word >> 48) & 0xFF)]
                    ^ t[Int(word >> 56)]
                p += 8
                count -= 8
            }
            while count > 0 {
                c = t[Int((c ^ UInt32(p.load(as: UInt8.self))) & 0xFF)] ^ (c >> 8)
                p += 1
                count -= 1
            }
            return ~c
        }
    }

    /// Continues `crc` over the bytes of `value` (little-endian integers give a portable CRC).
    @inlinable
    public static func update<T: BitwiseCopyable>(_ crc: UInt32, value: T) -> UInt32 {
        withUnsafeBytes(of: value) { update(crc, $0) }
    }

    /// The CRC of `bytes`.
    @inlinable
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { update(empty, $0) }
    }

    /// Eight 256-entry tables: `tables[k * 256 + b]` is the CRC of byte `b` followed by `k`
    /// zero bytes.
    @usableFromInline
    static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for b in 0..<256 {
            var c = UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[b] = c
        }
        for k in 1..<8 {
            for b in 0..<256 {
                let previous = t[(k - 1) * 256 + b]
                t[k * 256 + b] = t[Int(previous & 0xFF)] ^ (previous >> 8)
            }
        }
        return t
    }()
}
