import ArgumentParser
import Glibc
import PageCache

/// `mmapkit-cli`: the `mmapkit` commands defined with ArgumentParser.
///
/// `mmapkit` runs this executable (through `exec`, with the same arguments) for every command
/// line its own parser leaves alone: help, version, usage errors and unusual spellings of valid
/// lines. It defines the help text and the usage errors, and runs the page-cache commands with
/// the same code as `mmapkit`.
@main
struct MmapKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mmapkit",
        abstract: "Memory-mapping tools built on MmapKit.",
        discussion:
            "Exit status: 0 on success, 1 when any file failed (the others are still processed), 2 on usage errors.",
        version: "mmapkit \(toolVersion) (MmapKit tools; Swift 6, Linux)",
        subcommands: [BenchLauncher.self, Residency.self, Touch.self, Evict.self, Lock.self]
    )

    static let toolVersion = "0.9.0"

    /// Parses and runs, mapping usage errors to exit status 2 (ArgumentParser's default is 64).
    static func main() {
        if CommandLine.argc > 1, let first = CommandLine.unsafeArgv[1], strcmp(first, "bench") == 0 {
            BenchLauncher.execBench()
        }
        let arguments = RawArguments.forParsing()
        // No command, or help for a command that does not exist: usage errors (status 2).
        if arguments.isEmpty {
            Output.stderr.line(helpMessage())
            Glibc.exit(2)
        }
        if arguments.count >= 2 && arguments[0] == "help" {
            switch arguments[1] {
            case "bench", "residency", "touch", "evict", "lock", "help": break
            default:
                Output.stderr.line(
                    "Error: unknown command '\(arguments[1])'\nUsage: \(usageString())\n"
                        + "  See 'mmapkit --help' for more information."
                )
                Glibc.exit(2)
            }
        }
        do {
            // Paths that are not UTF-8 pass through ArgumentParser as placeholders (BytePath.swift).
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                Output.stderr.line(fullMessage(for: error))
                Glibc.exit(2)
            }
            if code == .success {
                // Help and version: a report that cannot be written is a failure.
                let message = fullMessage(for: error)
                if !message.isEmpty { Output.stdout.line(message) }
                Output.stdout.flush()
                if Output.stdout.writeError != 0 {
                    Output.stderr.line("mmapkit: cannot write the output: \(errnoText(Output.stdout.writeError))")
                    Glibc.exit(1)
                }
                Glibc.exit(0)
            }
            exit(withError: error)
        }
    }
}

/// `mmapkit bench`: replaced by `mmapkit-bench` (see ``MmapKitCommand``); listed here for help.
struct BenchLauncher: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure MmapKit against raw syscalls, Foundation and pread, side by side.",
        discussion: "Runs mmapkit-bench, built beside mmapkit; `mmapkit bench --help` lists its options."
    )

    @Argument(parsing: .captureForPassthrough) var arguments: [String] = []

    func run() throws { Self.execBench() }

    /// Replaces this process with `mmapkit-bench` from the same directory, passing argv[2...].
    static func execBench() -> Never { execSibling("mmapkit-bench", arguments: 2, purpose: "bench") }
}
