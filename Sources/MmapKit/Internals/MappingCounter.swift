internal import CMmapShim

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
}
