import Glibc

/// A page-cache command line parsed without ArgumentParser, for start-up time and memory.
///
/// ArgumentParser builds its model of a command by reflection before it parses anything, which
/// costs more than `evict` of a 1 GiB file itself (about 1 ms and 3.5 MiB of resident memory in
/// the statically linked tool). This parser accepts only lines that are plainly valid: a
/// page-cache subcommand, then paths and known options in ArgumentParser's spellings
/// (`--name`, `--name value`, `--name=value`, `-x value`, grouped short flags such as `-sq` or
/// `-0b -` whose last letter may take the next argument, `--` before paths that start with `-`)
/// and produces exactly the values ArgumentParser would. Both parsers read the arguments
/// after ``RawArguments/normalized(_:)``, which rewrites getopt's attached values (`-p4M`), values
/// that start with `-` (`-p -4M`, `-i '-*'`) to `--name=…` and empty values (`--range=`) to
/// `--range ''`, so those spellings are read alike. Anything else returns nil, and
/// `mmapkit` runs `mmapkit-cli`, where ArgumentParser parses it and prints the help, the
/// version or the usage error, or runs the command:
/// help and version requests, unknown or misspelled options, a single-value option given twice,
/// an option value that starts with `-` (other than `-` itself), values that fail validation.
///
/// The tests run command lines both ways and compare the output and exit status
/// (`MMAPKIT_TEST_PARSER=argument-parser` turns this path off, `=fast` makes a line it declines
/// exit with status 99).
package struct FastCommandLine {
    enum Command {
        case residency(verbose: Bool)
        case touch
        case evict
        case lock(daemon: Bool, pidFile: String?)
    }

    private(set) var command: Command
    private(set) var settings = PageCacheSettings()

    /// Parses `arguments` (argv without the program name, as ``RawArguments/forParsing()``
    /// gives them), or returns nil for ArgumentParser to handle.
    package init?(_ arguments: [String]) {
        guard let subcommand = arguments.first else { return nil }
        switch subcommand {
        case "residency": command = .residency(verbose: false)
        case "touch": command = .touch
        case "evict": command = .evict
        case "lock": command = .lock(daemon: false, pidFile: nil)
        default: return nil
        }
        var index = 1
        var onlyPaths = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if onlyPaths || argument == "-" || !argument.hasPrefix("-") {
                settings.paths.append(argument)
            } else if argument == "--" {
                onlyPaths = true
            } else if argument.hasPrefix("--") {
                let body = argument.utf8.dropFirst(2)
                if let equals = body.firstIndex(of: UInt8(ascii: "=")) {
                    // --name=value: only options take a value. (`--name=` was made `--name ''`.)
                    let value = body[body.index(after: equals)...]
                    guard let option = name(long: String(Substring(body[..<equals]))), option.takesValue,
                        !value.isEmpty, set(option, to: String(Substring(value)))
                    else { return nil }
                } else {
                    guard let option = name(long: String(Substring(body))), set(option, from: arguments, at: &index)
                    else { return nil }
                }
            } else {
                // -abc: short flags, the last of which may be an option taking the next argument.
                let letters = Array(argument.utf8.dropFirst())
                for (position, letter) in letters.enumerated() {
                    guard let option = name(short: letter), !option.takesValue || position == letters.count - 1,
                        set(option, from: arguments, at: &index)
                    else { return nil }
                }
            }
        }
        if settings.usageError != nil { return nil }
    }

    /// Runs the command and exits with its status, as ArgumentParser would.
    package func run() -> Never {
        do {
            let status: Int32
            switch command {
            case .residency(let verbose): status = try PageCacheCommands.residency(settings, verbose: verbose)
            case .touch: status = try PageCacheCommands.touch(settings)
            case .evict: status = try PageCacheCommands.evict(settings)
            case .lock(let daemon, let pidFile):
                status = try PageCacheCommands.lock(settings, daemon: daemon, pidFile: pidFile)
            }
            exit(status)
        } catch {
            // As ArgumentParser's `exit(withError:)` reports an error of the command's own.
            Output.stderr.line("Error: \(error)")
            exit(1)
        }
    }

    // MARK: - Names

    /// The options of the page-cache commands (``PageCacheOptions``, and `-v`, `-d`, `-P`).
    private enum Name {
        case recursive, followSymlinks, oneFileSystem, countHardLinks, maxFileSize, range, exclude, include
        case batch, null, summaryOnly, quiet, json, showSkips, mincore, verbose, daemon, pidFile

        var takesValue: Bool {
            switch self {
            case .maxFileSize, .range, .exclude, .include, .batch, .pidFile: true
            default: false
            }
        }
    }

    /// The option spelled `--long` for this command, or nil.
    private func name(long: String) -> Name? {
        switch long {
        case "recursive": .recursive
        case "follow-symlinks": .followSymlinks
        case "one-file-system": .oneFileSystem
        case "count-hard-links": .countHardLinks
        case "max-file-size": .maxFileSize
        case "range": .range
        case "exclude": .exclude
        case "include": .include
        case "batch": .batch
        case "null": .null
        case "summary-only": .summaryOnly
        case "quiet": .quiet
        case "json": .json
        case "show-skips": .showSkips
        case "mincore": .mincore
        case "daemon": if case .lock = command { .daemon } else { nil }
        case "pid-file": if case .lock = command { .pidFile } else { nil }
        default: nil  // residency's -v has no long name
        }
    }

    /// The option spelled `-letter` for this command, or nil.
    private func name(short letter: UInt8) -> Name? {
        switch letter {
        case UInt8(ascii: "r"): .recursive
        case UInt8(ascii: "f"): .followSymlinks
        case UInt8(ascii: "F"): .oneFileSystem
        case UInt8(ascii: "m"): .maxFileSize
        case UInt8(ascii: "p"): .range
        case UInt8(ascii: "i"): .exclude
        case UInt8(ascii: "I"): .include
        case UInt8(ascii: "b"): .batch
        case UInt8(ascii: "0"): .null
        case UInt8(ascii: "s"): .summaryOnly
        case UInt8(ascii: "q"): .quiet
        case UInt8(ascii: "v"): if case .residency = command { .verbose } else { nil }
        case UInt8(ascii: "d"): if case .lock = command { .daemon } else { nil }
        case UInt8(ascii: "P"): if case .lock = command { .pidFile } else { nil }
        default: nil
        }
    }

    // MARK: - Values

    /// Sets a flag, or an option to the next argument (advancing `index`); false if the value
    /// is missing or looks like an option.
    private mutating func set(_ option: Name, from arguments: [String], at index: inout Int) -> Bool {
        guard option.takesValue else {
            setFlag(option)
            return true
        }
        guard index < arguments.count else { return false }
        let value = arguments[index]
        guard value == "-" || !value.hasPrefix("-") else { return false }
        index += 1
        return set(option, to: value)
    }

    /// Sets an option; false for a second value of a single-value option (ArgumentParser keeps
    /// the last; this parser leaves such lines to it).
    private mutating func set(_ option: Name, to value: String) -> Bool {
        switch option {
        case .exclude: settings.exclude.append(value)
        case .include: settings.include.append(value)
        case .maxFileSize:
            guard settings.maxFileSize == nil else { return false }
            settings.maxFileSize = value
        case .range:
            guard settings.range == nil else { return false }
            settings.range = value
        case .batch:
            guard settings.batch == nil else { return false }
            settings.batch = value
        case .pidFile:
            guard case .lock(let daemon, nil) = command, !value.isEmpty else { return false }
            command = .lock(daemon: daemon, pidFile: value)
        default: return false
        }
        return true
    }

    /// Sets a flag; a repeated flag stays set, as in ArgumentParser.
    private mutating func setFlag(_ flag: Name) {
        switch flag {
        case .recursive: settings.recursive = true
        case .followSymlinks: settings.followSymlinks = true
        case .oneFileSystem: settings.oneFileSystem = true
        case .countHardLinks: settings.countHardLinks = true
        case .null: settings.nullSeparated = true
        case .summaryOnly: settings.summaryOnly = true
        case .quiet: settings.quiet = true
        case .json: settings.json = true
        case .showSkips: settings.showSkips = true
        case .mincore: settings.mincore = true
        case .verbose: command = .residency(verbose: true)
        case .daemon: if case .lock(_, let pidFile) = command { command = .lock(daemon: true, pidFile: pidFile) }
        default: break
        }
    }
}
