import ArgumentParser
import Glibc

/// `mmapkit`: MmapKit's command-line tool.
///
/// The page-cache commands link neither Foundation nor ICU, so that they start about as fast as
/// vmtouch; `bench`, which measures Foundation among others, is the separate executable
/// `mmapkit-bench` beside this one, run through `exec`. A valid page-cache command line is
/// parsed by ``FastCommandLine`` without ArgumentParser; ArgumentParser parses everything else
/// (help, version, usage errors) and defines the commands' help.
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
        // Paths that are not UTF-8 pass through ArgumentParser as placeholders (BytePath.swift).
        let arguments = RawArguments.forParsing()
        // Test hook: MMAPKIT_TEST_PARSER=argument-parser skips the fast path, =fast requires it.
        let parser = getenv("MMAPKIT_TEST_PARSER").map { String(cString: $0) }
        if parser != "argument-parser", let fast = FastCommandLine(arguments) {
            fast.run()
        }
        if parser == "fast" {
            Output.stderr.line("mmapkit: MMAPKIT_TEST_PARSER=fast, but ArgumentParser has to parse this line")
            Glibc.exit(99)
        }
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                Output.stderr.line(fullMessage(for: error))
                Glibc.exit(2)
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
    static func execBench() -> Never {
        var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 32)
        let length = readlink("/proc/self/exe", &target, Int(PATH_MAX))
        if length > 0, let slash = target[0..<length].lastIndex(of: CChar(UInt8(ascii: "/"))) {
            let name = Array("/mmapkit-bench".utf8CString)
            target.replaceSubrange(slash..<(slash + name.count), with: name)
            var arguments: [UnsafeMutablePointer<CChar>?] = [strdup("mmapkit-bench")]
            for index in 2..<Int(CommandLine.argc) { arguments.append(CommandLine.unsafeArgv[index]) }
            arguments.append(nil)
            execv(target, arguments)
        }
        let reason = String(cString: strerror(errno))
        Output.stderr.line(
            "mmapkit: bench runs mmapkit-bench from mmapkit's directory, which failed (\(reason)); build it with "
                + "`swift build -c release --package-path Tools --product mmapkit-bench` (make tool does)"
        )
        Glibc.exit(1)
    }
}
