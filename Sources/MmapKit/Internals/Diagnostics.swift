internal import CMmapShim
internal import Glibc

/// Counters of the mappings MmapKit made, for tests and diagnostics. Not API (underscored).
///
/// Every successful `mmap(2)` through MmapKit adds one to ``mapCalls``, every successful
/// `munmap(2)` one to ``unmapCalls``; ``liveMappings`` is their difference. The counters cost one
/// relaxed atomic add next to each syscall and exist in every build, so release-mode tests can
/// prove that each mapping is unmapped exactly once.
public enum _MmapDiagnostics {
    /// Mappings made by MmapKit and not yet unmapped, process-wide.
    public static var liveMappings: Int { Int(CMmapShim_liveMappings()) }
    /// Successful `mmap(2)` calls made by MmapKit since the process started.
    public static var mapCalls: Int { Int(CMmapShim_mapCalls()) }
    /// Successful `munmap(2)` calls made by MmapKit since the process started.
    public static var unmapCalls: Int { Int(CMmapShim_unmapCalls()) }

    /// Copies `destination.count` bytes from mapped memory at `source` with the SIGBUS guard
    /// armed on the source; returns the faulting address, or nil. For tests that read raw
    /// addresses (reservations). The bytes must be mapped.
    @unsafe
    public static func guardedCopy(
        from source: UnsafeRawPointer,
        into destination: UnsafeMutableRawBufferPointer
    ) -> UInt? {
        guard destination.count > 0 else { return nil }
        var fault: UnsafeMutableRawPointer? = nil
        let length = destination.count
        let error = unsafe system_guardedCopy(destination.baseAddress, source, length, source, length, &fault)
        precondition(error == 0 || error == EFAULT, "MmapKit: cannot install the SIGBUS guard (errno \(error))")
        return unsafe fault.map { UInt(bitPattern: $0) }
    }

    /// Copies `source` into mapped memory at `destination` with the SIGBUS guard armed on the
    /// destination; returns the faulting address, or nil. For tests.
    @unsafe
    public static func guardedCopy(
        from source: UnsafeRawBufferPointer,
        into destination: UnsafeMutableRawPointer
    ) -> UInt? {
        guard source.count > 0 else { return nil }
        var fault: UnsafeMutableRawPointer? = nil
        let length = source.count
        let error = unsafe system_guardedCopy(destination, source.baseAddress, length, destination, length, &fault)
        precondition(error == 0 || error == EFAULT, "MmapKit: cannot install the SIGBUS guard (errno \(error))")
        return unsafe fault.map { UInt(bitPattern: $0) }
    }
}
