/// What a handle may do with its pages: the type parameter of ``MmapHandle`` and
/// ``MmapViewHandle``.
///
/// There are two kinds, ``MmapReadOnly`` and ``MmapReadWrite``. Every operation is written
/// once, on the generic type; the operations that write (``MmapHandle/mutableBytes``,
/// destructive advice, ``MmapHandle/grow(to:fileDescriptor:allocate:mayMove:)``, ...) exist
/// only where `Access` is ``MmapReadWrite``, so the compiler refuses them on a read-only
/// mapping. Code names the kinds through the typealiases ``Mmap``, ``MutableMmap``,
/// ``MmapView`` and ``MutableMmapView``.
///
/// MmapKit's two kinds are the only conforming types; conforming another type is not supported.
public protocol MmapAccess: Sendable {
    /// Whether pages of this kind are writable. Not API (underscored): MmapKit reads it to choose
    /// the protection and the open mode.
    static var _isWritable: Bool { get }
}

/// Read-only access: the pages are mapped with `PROT_READ`. See ``Mmap`` and ``MmapView``.
public enum MmapReadOnly: MmapAccess {
    /// `false`: read-only pages.
    public static var _isWritable: Bool { false }
}

/// Read-write access: the pages are mapped with `PROT_READ | PROT_WRITE`. See ``MutableMmap``
/// and ``MutableMmapView``.
public enum MmapReadWrite: MmapAccess {
    /// `true`: writable pages.
    public static var _isWritable: Bool { true }
}

/// A read-only memory mapping of a file, unmapped exactly once when it ends.
///
/// Read it through ``MmapHandle/bytes`` (a `RawSpan` that borrows the mapping, so the compiler
/// refuses to unmap or resize it while the span lives) or ``MmapHandle/withUnsafeBytes(_:)``:
///
/// ```swift
/// let map = try Mmap(path: "/var/db/segment")
/// let header = unsafe map.bytes.unsafeLoad(fromByteOffset: 0, as: UInt64.self)
/// ```
///
/// The counterpart of memmap2's `Mmap`. Its operations are documented on ``MmapHandle``.
public typealias Mmap = MmapHandle<MmapReadOnly>

/// A writable memory mapping of a file or of anonymous memory, unmapped exactly once.
///
/// Write through ``MmapHandle/mutableBytes`` (a `MutableRawSpan` with exclusive access, so
/// nothing else can read, unmap or resize the mapping meanwhile) or
/// ``MmapHandle/withUnsafeMutableBytes(_:)``; make writes durable with
/// ``MmapHandle/flush(range:)``:
///
/// ```swift
/// var map = try MutableMmap(path: "/var/db/segment")
/// var bytes = map.mutableBytes
/// bytes.storeBytes(of: 42 as UInt64, toByteOffset: 0, as: UInt64.self)
/// try map.flush()
/// ```
///
/// The counterpart of memmap2's `MmapMut`. Its operations are documented on ``MmapHandle``.
public typealias MutableMmap = MmapHandle<MmapReadWrite>
