import ArgumentParser
import PageCache

/// Options shared by the page-cache commands. Long names read as Swift CLI options; vmtouch's
/// letters are accepted where they do not clash (`-h` stays help: use `--count-hard-links`).
struct PageCacheOptions: ParsableArguments {
    @Argument(help: "Files and directories (directories are walked). Names are used as bytes.")
    var paths: [String] = []

    @Flag(name: [.short, .long], help: "Accepted for compatibility: directories are always walked.")
    var recursive = false

    @Flag(name: [.customShort("f"), .customLong("follow-symlinks")], help: "Follow symbolic links inside directories.")
    var followSymlinks = false

    @Flag(name: [.customShort("F"), .customLong("one-file-system")], help: "Stay on each operand's filesystem.")
    var oneFileSystem = false

    @Flag(help: "Count a file once per name (hard links, links), not once per inode (vmtouch -h).")
    var countHardLinks = false

    @Option(name: [.customShort("m"), .customLong("max-file-size")], help: "Skip files larger than this (e.g. 500M).")
    var maxFileSize: String?

    @Option(
        name: [.customShort("p"), .customLong("range")],
        help: "Only this byte range of each file: START-END, START-, -END or LENGTH (K, M, G suffixes)."
    )
    var range: String?

    @Option(name: [.customShort("i"), .customLong("exclude")], help: "Skip files and directories matching this.")
    var exclude: [String] = []

    @Option(name: [.customShort("I"), .customLong("include")], help: "Only files whose name matches this pattern.")
    var include: [String] = []

    @Option(
        name: [.customShort("b"), .customLong("batch")],
        help: "Read paths from this file ('-': stdin), one a line."
    )
    var batch: String?

    @Flag(name: [.customShort("0"), .customLong("null")], help: "Batch input is NUL-separated (find -print0).")
    var nullSeparated = false

    @Flag(name: [.short, .customLong("summary-only")], help: "Print only the summary, not a line per file.")
    var summaryOnly = false

    @Flag(name: [.short, .long], help: "Print nothing but errors.")
    var quiet = false

    @Flag(help: "Print JSON: one object, files streamed in its 'files' array (see the README).")
    var json = false

    @Flag(help: "Print a stderr line for every path skipped inside directories (symbolic links, FIFOs, ...).")
    var showSkips = false

    @Flag(help: "Measure with mmap + mincore even where cachestat(2) is available.")
    var mincore = false

    func validate() throws {
        if let message = settings.usageError { throw ValidationError(message) }
    }

    /// The parsed values, as the commands use them.
    var settings: PageCacheSettings {
        var settings = PageCacheSettings()
        settings.paths = paths
        settings.recursive = recursive
        settings.followSymlinks = followSymlinks
        settings.oneFileSystem = oneFileSystem
        settings.countHardLinks = countHardLinks
        settings.maxFileSize = maxFileSize
        settings.range = range
        settings.exclude = exclude
        settings.include = include
        settings.batch = batch
        settings.nullSeparated = nullSeparated
        settings.summaryOnly = summaryOnly
        settings.quiet = quiet
        settings.json = json
        settings.showSkips = showSkips
        settings.mincore = mincore
        return settings
    }
}
