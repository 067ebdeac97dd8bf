/// A fixed-width integer or floating-point type that MmapKit loads and stores without `unsafe`:
/// it has no padding, and every bit pattern of its size is one of its values, so any bytes a
/// file holds read back as a valid value.
///
/// The conforming types are the standard library's fixed-width integers (`Int8` to `UInt64`,
/// `Int`, `UInt`) and `Float16`, `Float` and `Double`. The set is closed: a type with invalid bit
/// patterns (`Bool`, an enum, a type with padding) would make a safe load undefined behaviour,
/// so only MmapKit can add conformances (the requirements are not API).
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

    /// Not API: a value only MmapKit can make, so that no other module can conform a type.
    static var _mmapScalarSeal: _MmapScalarSeal { get }
}

/// Not API: the proof of a conformance to ``MmapScalar``, which only MmapKit can make.
@frozen
public struct _MmapScalarSeal: Sendable {
    @usableFromInline
    internal init() {}
}

// MARK: - Integers

extension MmapScalar where Self: FixedWidthInteger {
    /// Not API: the value with its bytes in the reverse order.
    @inlinable
    public var _mmapByteSwapped: Self { byteSwapped }

    /// Not API: see the requirement.
    @inlinable
    public static var _mmapScalarSeal: _MmapScalarSeal { _MmapScalarSeal() }
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

    /// Not API: see the requirement.
    @inlinable
    public static var _mmapScalarSeal: _MmapScalarSeal { _MmapScalarSeal() }
}

extension Float: MmapScalar {
    /// Not API: the value with its bytes in the reverse order.
    @inlinable
    public var _mmapByteSwapped: Float { Float(bitPattern: bitPattern.byteSwapped) }

    /// Not API: see the requirement.
    @inlinable
    public static var _mmapScalarSeal: _MmapScalarSeal { _MmapScalarSeal() }
}

extension Double: MmapScalar {
    /// Not API: the value with its bytes in the reverse order.
    @inlinable
    public var _mmapByteSwapped: Double { Double(bitPattern: bitPattern.byteSwapped) }

    /// Not API: see the requirement.
    @inlinable
    public static var _mmapScalarSeal: _MmapScalarSeal { _MmapScalarSeal() }
}
