import ArgumentParser

/// `mmapkit`: MmapKit's command-line tool.
@main
struct MmapKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mmapkit",
        abstract: "Memory-mapping tools built on MmapKit.",
        subcommands: [Bench.self]
    )
}
