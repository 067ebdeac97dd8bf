/// A fixed-width integer or floating-point type that MmapKit loads and stores without `unsafe`:
/// it has no padding, and every bit pattern of its size is one of its values, so any bytes a
/// file holds read back as a valid value.
///
/// The conforming types are the standard library's fixed-width integers (`Int8` to `UInt64`,
/// `Int`, `UInt`) and `Float16`, `Float` and `Double`. The set is closed: a type with invalid bit
/// patterns (`Bool`, an enum, a type with padding) would make a safe load undefined behaviour.
/// Swift cannot forbid a conformance in another module, so every typed access checks the type
/// against this list and traps with a message for any other type (the check is resolved at
/// compile time once the call is specialized, and costs nothing then).
///
/// ```swift
/// func header(of map: borrowing Mmap) -> (magic: UInt32, version: UInt16) {
///     let bytes = map.bytes
///     return (
///         bytes.load(fromByteOffset: 0, as: UInt32.self, byteOrder: .bigEndian),
///         bytes.load(fromByteOffset: 4, as: UInt16.self, byteOrder: .littleEndian)
///     )
/// }
/// ```
public protocol MmapScalar: BitwiseCopyable {
    /// Not API: the value with its bytes in the reverse order.
    var _mmapByteSwapped: Self { get }
}

/// Traps unless `T` is one of MmapKit's own ``MmapScalar`` types: a conformance made in another
/// module (of `Bool`, an enum, a padded struct) would let a safe load produce an invalid value.
@inlinable
@inline(__always)
internal func _mmapCheckScalar<T: MmapScalar>(_: T.Type) {
    guard
        T.self == UInt8.self || T.self == Int8.self || T.self == UInt16.self || T.self == Int16.self
            || T.self == UInt32.self || T.self == Int32.self || T.self == UInt64.self || T.self == Int64.self
            || T.self == UInt.self || T.self == Int.self || T.self == Float16.self || T.self == Float.self
            || T.self == Double.self
    else { _mmapForeignScalar("\(T.self)") }
}

/// Traps with the message for a type conformed to ``MmapScalar`` outside MmapKit.
@usableFromInline
@inline(never)
internal func _mmapForeignScalar(_ type: String) -> Never {
    fatalError(
        "MmapKit: \(type) was conformed to MmapScalar outside MmapKit; only the fixed-width integer and "
            + "floating-point types may be loaded and stored (another type may have invalid bit patterns)"
    )
}

// MARK: - Integers

extension MmapScalar where Self: FixedWidthInteger {
    /// Not API: the value with its bytes in the reverse order.
    @inlinable
    public var _mmapByteSwapped: Self { byteSwapped }

}

extension UInt8: MmapScalar {}
extension Int8: MmapScalar {}
extension UInt16: MmapScalar {}
extension Int16: MmapScalar {}
extension UInt32: MmapScalar {}
extension Int32: MmapScalar {}
extension UInt64: MmapScalar {}
extension Int64: MmapScalar {}
extension UInt: MmapScalar {}
extension Int: MmapScalar {}

// MARK: - Floating point

extension Float16: MmapScalar {
    /// Not API: the value with its bytes in the reverse order.
    @inlinable
    public var _mmapByteSwapped: Float16 { Float16(bitPattern: bitPattern.byteSwapped) }

}

extension Float: MmapScalar {
    /// Not API: the value with its bytes in the reverse order.
    @inlinable
    public var _mmapByteSwapped: Float { Float(bitPattern: bitPattern.byteSwapped) }

}

extension Double: MmapScalar {
    /// Not API: the value with its bytes in the reverse order.
    @inlinable
    public var _mmapByteSwapped: Double { Double(bitPattern: bitPattern.byteSwapped) }

}
