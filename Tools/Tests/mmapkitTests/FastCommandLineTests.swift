import Foundation
import Glibc
import Testing

/// `mmapkit` parses valid page-cache command lines itself and leaves everything else to
/// ArgumentParser (FastCommandLine.swift). Each line here runs both ways
/// (`MMAPKIT_TEST_PARSER=argument-parser` turns the fast path off; `=fast` makes sure it was
/// taken): the exit status and both streams must be the same, but for the elapsed time and the
/// touch rate.
@Suite(.serialized) struct FastCommandLineTests {
    let scratch: Scratch
    let list: String
    let nulList: String

    init() throws {
        scratch = try Scratch()
        try scratch.write("a.dat", pages: 3)
        try scratch.write("b.log", pages: 1, lastPageBytes: 10)
        try scratch.write("-dash", pages: 2)
        try FileManager.default.createDirectory(atPath: scratch.at("sub"), withIntermediateDirectories: true)
        try scratch.write("sub/c.dat", pages: 5)
        symlink(scratch.at("a.dat"), scratch.at("sub/link"))
        list = scratch.at("list")
        try Data((scratch.file.path + "\n" + scratch.at("a.dat") + "\n").utf8).write(to: URL(fileURLWithPath: list))
        nulList = scratch.at("nul-list")
        try Data((scratch.at("a.dat") + "\0" + scratch.at("b.log")).utf8).write(to: URL(fileURLWithPath: nulList))
    }

    /// Lines that run a command, in every spelling the fast path accepts.
    var commandLines: [[String]] {
        let file = scratch.file.path
        let dir = scratch.path
        let a = scratch.at("a.dat")
        return [
            ["residency", file], ["residency", dir], ["residency", "-s", dir], ["residency", "-sq", dir],
            ["residency", "-q", "/no/such/file"], ["residency", "-v", file, a], ["residency", "-vs", file],
            ["residency", "--json", dir, "/no/such/file"], ["residency", "--summary-only", "--quiet", dir],
            ["residency", "-r", "-f", "-F", "--count-hard-links", "--show-skips", "--mincore", dir],
            ["residency", "-rfF", dir, "-s", "--show-skips"], ["residency", dir, "--recursive", "--follow-symlinks"],
            ["residency", "--one-file-system", dir], ["residency", "-p", "4K-40K", file],
            ["residency", "--range", "100K", file], ["residency", "--range=4K-", file],
            ["residency", "--range=-4K", file],
            ["residency", "-m", "10K", dir], ["residency", "--max-file-size", "1M", dir],
            ["residency", "--max-file-size=8K", dir], ["residency", "-i", "*.log", dir],
            ["residency", "-I", "*.dat", dir],
            ["residency", "--exclude", "sub", "--include=*.dat", "-i", "a*", dir],
            ["residency", "-b", list], ["residency", "--batch", list, a], ["residency", "--batch=\(list)", "-s"],
            ["residency", "-0b", nulList], ["residency", "-0", "-b", nulList],
            ["residency", "--null", "--batch", nulList],
            ["residency", "-s", "-s", "-q", "-q", file], ["residency", "--", "-dash"],
            ["residency", dir, "--", "--json"],
            ["residency", "-"], ["residency", ""], ["residency", "help"], ["residency", "touch", file],
            ["evict", scratch.at("b.log")], ["evict", "--json", "-p", "0-8K", a], ["evict", "-s", dir],
            ["touch", "-q", "/no/such/file"], ["touch", "--json", "--range", "0-0", file],
            // getopt spellings, rewritten for both parsers (RawArguments.normalized).
            ["residency", "-p", "-4K", file], ["residency", "--range", "-4K", file], ["residency", "-p4K", file],
            ["residency", "-p-4K", file], ["residency", "-sp-4K", file], ["residency", "-sp", "-4K", file],
            ["residency", "-m1.5M", dir], ["residency", "-m", "1.5M", dir], ["residency", "-p", "1.5K-", file],
            ["residency", "-i*.log", dir], ["residency", "-I*.dat", "-b", list], ["residency", "-b\(list)"],
            ["residency", "-bs", list], ["evict", "-sp4K", a], ["residency", "-i", "*.log", scratch.at("b.log"), a],
            // A value that starts with '-' is the value (getopt), after any option taking one.
            ["residency", "-s", "-i", "-*", dir], ["residency", "--exclude", "-dash", dir],
            ["residency", "-I", "-*", dir],
            ["residency", "-si", "-d*", dir],
        ]
    }

    /// Lines the fast path leaves to ArgumentParser: help, version, usage errors, odd spellings.
    var otherLines: [[String]] {
        let file = scratch.file.path
        return [
            [], ["--help"], ["-h"], ["--version"], ["help"], ["help", "residency"], ["bogus"], ["residency"],
            ["residency", "--help"], ["residency", "-h"], ["residency", file, "-h"], ["evict", "--help"],
            ["lock", "--help"], ["touch", "--version"], ["residency", "-x", file], ["residency", "--bogus", file],
            ["residency", "--bat", file], ["residency", "--json=yes", file], ["residency", "--range", "bad", file],
            ["residency", "-m", "big", file], ["residency", "--max-file-size=", file],
            ["residency", "--exclude=", file], ["residency", "-p=4K", file], ["residency", "-p", "-4Q", file],
            ["residency", "-m", "1..5M", file], ["residency", "-p4K", "-p", "8K", file],
            ["residency", "--range", "0-4K", "--range", "0-8K", file], ["residency", "-b"],
            ["residency", "-b", "--json"],
            ["residency", "-d", file], ["residency", "--daemon", file], ["residency", "--verbose", file],
            ["evict", "-v", file], ["touch", "--pid-file", "/tmp/x", file], ["lock"], ["lock", "-P"],
            ["lock", "-v", file], ["lock", "-dP"], ["residency", "-s", "-5", file], ["residency", "---", file],
            // An empty value is empty, not the next argument.
            ["residency", "--range=", "4K", file], ["residency", "--exclude=", file, file],
            ["residency", "-i", "", file],
            ["residency", "--include=", file], ["residency", "-b", ""], ["residency", "--batch=", file],
            ["lock", "-P", "", file], ["lock", "--pid-file=", file], ["residency", "-P", "-x", file],
        ]
    }

    @Test func everyAcceptedLineRunsAsArgumentParserRunsIt() throws {
        for line in commandLines { try expectSameOutcome(line, fastPath: true) }
    }

    @Test func everyOtherLineIsLeftToArgumentParser() throws {
        for line in otherLines { try expectSameOutcome(line, fastPath: false) }
    }

    @Test func argumentsThatAreNotUTF8ArePathsBothWays() throws {
        let name: [UInt8] = Array("caf".utf8) + [0xE9, UInt8(ascii: "-")]
        try scratch.writeBytes(name, pages: 2)
        let path = Array(scratch.path.utf8) + [UInt8(ascii: "/")] + name
        for line in [
            [Array("residency".utf8), path], [Array("residency".utf8), Array("--json".utf8), path],
            [Array("residency".utf8), Array("-i".utf8), [0xFF], Array(scratch.path.utf8)],
            [Array("residency".utf8), [UInt8(ascii: "-"), 0xFF]],
        ] {
            try expectSameOutcome(bytes: line, fastPath: true)
        }
    }

    private func expectSameOutcome(_ line: [String], fastPath: Bool) throws {
        try expectSameOutcome(bytes: line.map { Array($0.utf8) }, fastPath: fastPath)
    }

    /// Runs `line` both ways; with `fastPath`, the first run must not fall back to ArgumentParser.
    private func expectSameOutcome(bytes line: [[UInt8]], fastPath: Bool) throws {
        let argv = [Array(toolURL.path.utf8)] + line
        let shown = line.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
        // evict and touch change the page cache: start each run from the same state.
        let prepare = { _ = try run([Array(toolURL.path.utf8), Array("evict".utf8), Array(scratch.path.utf8)]) }
        try prepare()
        let fast = try run(argv, environment: fastPath ? ["MMAPKIT_TEST_PARSER": "fast"] : [:])
        try prepare()
        let parsed = try run(argv, environment: ["MMAPKIT_TEST_PARSER": "argument-parser"])
        #expect(fast.status == parsed.status, "mmapkit \(shown)")
        #expect(masked(fast.stdout) == masked(parsed.stdout), "mmapkit \(shown)")
        #expect(masked(fast.stderr) == masked(parsed.stderr), "mmapkit \(shown)")
    }

    /// The output without what differs from run to run: elapsed seconds and the touch rate.
    private func masked(_ text: String) -> String {
        var text = text
        for (pattern, replacement) in [
            (#"Elapsed: [0-9.]+ s"#, "Elapsed: _"), (#""seconds":[0-9.e+-]+"#, #""seconds":_"#),
            (#"at [0-9.]+ [KMGTP]?i?B/s"#, "at _/s"), (#""newlyResidentBytesPerSecond":[0-9.e+-]+"#, "_"),
        ] {
            text = text.replacingOccurrences(of: pattern, with: replacement, options: .regularExpression)
        }
        return text
    }
}
