import ArgumentParser
import Glibc

/// `mmapkit`: MmapKit's command-line tool.
@main
struct MmapKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mmapkit",
        abstract: "Memory-mapping tools built on MmapKit.",
        discussion:
            "Exit status: 0 on success, 1 when any file failed (the others are still processed), 2 on usage errors.",
        version: "mmapkit \(toolVersion) (MmapKit tools; Swift 6, Linux)",
        subcommands: [Bench.self, Residency.self, Touch.self, Evict.self, Lock.self]
    )

    static let toolVersion = "0.9.0"

    /// Parses and runs, mapping usage errors to exit status 2 (ArgumentParser's default is 64).
    static func main() {
        do {
            // Paths that are not UTF-8 pass through ArgumentParser as placeholders (BytePath.swift).
            var command = try parseAsRoot(RawArguments.forParsing())
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandleOutput.standardError(fullMessage(for: error))
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Minimal output helpers (no Foundation needed for these).
enum FileHandleOutput {
    static func standardError(_ message: String) {
        let line = message.hasSuffix("\n") ? message : message + "\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(STDERR_FILENO, $0.baseAddress, $0.count - 1) }
    }
}
