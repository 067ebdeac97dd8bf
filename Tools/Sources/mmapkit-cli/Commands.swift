import ArgumentParser
import Glibc
import PageCache

// MARK: - residency

/// `mmapkit residency`: which parts of files are in the page cache (like fincore or vmtouch).
struct Residency: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how much of each file is resident in the page cache (cachestat, or mincore).",
        discussion: """
            Each (device, inode) is counted once: hard links and symbolic links to a file already \
            counted are folded (--count-hard-links counts every name). Symbolic links inside \
            directories are skipped unless -f; files on proc, sysfs and similar filesystems have no \
            page cache and are skipped. Skips are counted in the summary and are not failures.
            """
    )

    @OptionGroup var options: PageCacheOptions

    @Flag(name: .short, help: "Show a bar of which parts are resident (# all, o some, . none); uses mincore.")
    var verbose = false

    func run() throws { try exitStatus(PageCacheCommands.residency(options.settings, verbose: verbose)) }
}

// MARK: - touch

/// `mmapkit touch`: bring files into the page cache, reporting errors.
struct Touch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read files into the page cache (MADV_POPULATE_READ, which reports errors).",
        discussion: "The rate counts only the bytes that were not resident before."
    )

    @OptionGroup var options: PageCacheOptions

    func run() throws { try exitStatus(PageCacheCommands.touch(options.settings)) }
}

// MARK: - evict

/// `mmapkit evict`: drop files from the page cache.
struct Evict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drop files from the page cache (posix_fadvise DONTNEED; fdatasync first if dirty).",
        discussion: """
            Pages another process has mapped or locked can stay resident; the report says how many \
            remain. For a file you can neither write nor own, the kernel hides the residency \
            (cachestat refuses, mincore reports every page resident): the eviction is still done, \
            and the report says the residency is hidden instead of guessing.
            """
    )

    @OptionGroup var options: PageCacheOptions

    func run() throws { try exitStatus(PageCacheCommands.evict(options.settings)) }
}

// MARK: - lock

/// `mmapkit lock`: keep files locked in memory until SIGINT or SIGTERM.
struct Lock: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Map, prefault and mlock files, and hold them until SIGINT or SIGTERM.",
        discussion: """
            SIGHUP does not drop the locks (a closed terminal does not end the hold). Locking is \
            limited by RLIMIT_MEMLOCK (see `ulimit -l`) unless the process has CAP_IPC_LOCK.
            """
    )

    @OptionGroup var options: PageCacheOptions

    @Flag(name: [.customShort("d"), .customLong("daemon")], help: "Detach once the files are locked.")
    var daemon = false

    @Option(name: [.customShort("P"), .customLong("pid-file")], help: "Write the holding process's pid here.")
    var pidFile: String?

    func validate() throws {
        if pidFile == "" { throw ValidationError("--pid-file needs a file name") }
    }

    func run() throws { try exitStatus(PageCacheCommands.lock(options.settings, daemon: daemon, pidFile: pidFile)) }
}

/// Ends a command run by ArgumentParser with `status` (nothing printed).
private func exitStatus(_ status: Int32) throws {
    if status != 0 { throw ExitCode(status) }
}
