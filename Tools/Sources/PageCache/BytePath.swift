import Glibc

/// A file name as the kernel sees it: bytes, not necessarily UTF-8.
///
/// Paths stay bytes from `argv` (or a batch file) to the system calls; they become text only
/// for display, escaped like `fincore --raw` (`\xff`), and for JSON, where a name that is not
/// UTF-8 also carries its exact bytes in base64.
struct BytePath: Hashable {
    var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init(_ string: String) { self.bytes = Array(string.utf8) }

    /// The bytes as valid UTF-8 text, or nil.
    var utf8String: String? {
        String(validating: bytes, as: UTF8.self)
    }

    /// Printable text: valid UTF-8 is kept except control characters (C0, DEL and the C1
    /// controls U+0080–U+009F, which some terminals obey: `\xc2\x9b` is CSI) and backslashes,
    /// which are escaped as `\xHH` per byte as fincore does, as are bytes that are not UTF-8, so
    /// the output is unambiguous.
    var escaped: String {
        var out = ""
        out.reserveCapacity(bytes.count)
        appendEscaped(to: &out)
        return out
    }

    func appendEscaped(to out: inout String) {
        // 0xC2 leads every C1 control (and other Latin-1 characters): take the careful path.
        if let text = utf8String, !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == 0x5C || $0 == 0xC2 }) {
            out += text
            return
        }
        var index = 0
        while index < bytes.count {
            let length = validUTF8Length(at: index)
            if length == 1, bytes[index] >= 0x20, bytes[index] != 0x7F, bytes[index] != 0x5C {
                out.unicodeScalars.append(Unicode.Scalar(bytes[index]))
            } else if length == 2, bytes[index] == 0xC2, bytes[index + 1] < 0xA0 {
                out += "\\x" + hexByte(bytes[index]) + "\\x" + hexByte(bytes[index + 1])  // a C1 control
            } else if length > 1 {
                out += String(decoding: bytes[index..<index + length], as: UTF8.self)
            } else {
                out += "\\x" + hexByte(bytes[index])
            }
            index += max(length, 1)
        }
    }

    /// The length of the valid UTF-8 sequence starting at `index`, or 0.
    private func validUTF8Length(at index: Int) -> Int {
        let lead = bytes[index]
        let length: Int
        switch lead {
        case 0x00...0x7F: return 1
        case 0xC2...0xDF: length = 2
        case 0xE0...0xEF: length = 3
        case 0xF0...0xF4: length = 4
        default: return 0
        }
        guard index + length <= bytes.count else { return 0 }
        return String(validating: bytes[index..<index + length], as: UTF8.self) == nil ? 0 : length
    }

    /// Calls `body` with the path as a NUL-terminated C string.
    func withCString<R>(_ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
        var terminated = bytes
        terminated.append(0)
        return try terminated.withUnsafeBufferPointer { buffer in
            try buffer.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
        }
    }

    /// The last component (for include and exclude patterns).
    var lastComponent: ArraySlice<UInt8> {
        var end = bytes.count
        while end > 1 && bytes[end - 1] == UInt8(ascii: "/") { end -= 1 }
        let start = bytes[..<end].lastIndex(of: UInt8(ascii: "/")).map { $0 + 1 } ?? 0
        return bytes[start..<end]
    }
}

func hexByte(_ byte: UInt8) -> String {
    let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
    return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
}

// MARK: - Arguments

/// Command-line arguments that are not valid UTF-8 cannot reach ArgumentParser intact (Swift
/// repairs them with U+FFFD). Such an argument is passed as a placeholder that names its index
/// in `argv`, and ``BytePath/init(argument:)`` turns the placeholder back into the raw bytes.
package enum RawArguments {
    static let marker = "\u{E000}mmapkit-argv:"

    /// `CommandLine.arguments` without the program name, non-UTF-8 arguments as placeholders,
    /// with the getopt spellings vmtouch users type rewritten for both parsers (``normalized(_:)``).
    package static func forParsing() -> [String] {
        normalized(unnormalized())
    }

    /// getopt spellings that ArgumentParser does not read, rewritten to the `--name=value` form
    /// that both ``FastCommandLine`` and ArgumentParser read the same way, for the page-cache
    /// commands (before `--`):
    /// - an attached value of a single-letter option, alone or after flags: `-p4M`, `-m1.5M`,
    ///   `-i*.log`, `-sp-4M` become `--range=4M`, `--max-file-size=1.5M`, `--exclude=*.log`,
    ///   `-s --range=-4M` (as getopt reads them, `-bs` is the batch file `s`);
    /// - the value of an option given as the next argument is that argument even if it starts
    ///   with `-`, as getopt reads it: `-p -4M`, `-i '-*'`, `--exclude -x` become `--range=-4M`,
    ///   `--exclude=-*`, `--exclude=-x` (`-P` and `--pid-file` only for `lock`);
    /// - an empty value (`--range=`, `-i ''`) becomes `--range` and an empty argument, which both
    ///   parsers read as an empty value (ArgumentParser reads `--range=` as `--range` followed by
    ///   the next argument).
    package static func normalized(_ arguments: [String]) -> [String] {
        guard let first = arguments.first else { return arguments }
        switch first {
        case "residency", "touch", "evict", "lock": break
        default: return arguments
        }
        var result = [first]
        var index = 1
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                result += arguments[(index - 1)...]
                break
            }
            let next = index < arguments.count ? arguments[index] : nil
            let bytes = Array(argument.utf8)
            if bytes.count > 2 && bytes[0] == UInt8(ascii: "-") && bytes[1] == UInt8(ascii: "-") {
                // --name value and --name=: the value as getopt reads it, even if it starts with '-'.
                let body = bytes[2...]
                if let equals = body.firstIndex(of: UInt8(ascii: "=")) {
                    let name = String(decoding: body[..<equals], as: UTF8.self)
                    if equals == body.endIndex - 1, isValueOption(long: name, command: first) {
                        result += ["--" + name, ""]
                        continue
                    }
                } else if let next, isValueOption(long: String(decoding: body, as: UTF8.self), command: first) {
                    result += valueForm(argument, next)
                    index += 1
                    continue
                }
                result.append(argument)
                continue
            }
            guard bytes.count >= 2, bytes[0] == UInt8(ascii: "-"), bytes[1] != UInt8(ascii: "-") else {
                result.append(argument)
                continue
            }
            // A group of flags, perhaps ending with a value option and its attached value.
            var rewritten: [String]? = nil
            for position in 1..<bytes.count {
                let letter = bytes[position]
                let flags = position > 1 ? ["-" + String(decoding: bytes[1..<position], as: UTF8.self)] : []
                if let long = longNameOfValueOption(letter) {
                    if position + 1 < bytes.count {
                        rewritten = flags + ["--\(long)=" + String(decoding: bytes[(position + 1)...], as: UTF8.self)]
                    } else if let next, isValueOption(long: long, command: first) {
                        // The next argument is the value, even if it starts with '-' (as in getopt).
                        rewritten = flags + valueForm("--" + long, next)
                        index += 1
                    }
                    break
                }
                guard isFlagLetter(letter) else { break }
            }
            result += rewritten ?? [argument]
        }
        return result
    }

    /// `--name=value`, or `--name` and an empty argument for an empty value: ArgumentParser
    /// would read `--name=` as `--name` followed by the next argument.
    private static func valueForm(_ option: String, _ value: String) -> [String] {
        value.isEmpty ? [option, ""] : [option + "=" + value]
    }

    /// Whether `--long` takes a value in `command` (`--pid-file` only in `lock`).
    private static func isValueOption(long: String, command: String) -> Bool {
        switch long {
        case "range", "max-file-size", "exclude", "include", "batch": true
        case "pid-file": command == "lock"
        default: false
        }
    }

    /// The long name of a single-letter option that takes a value.
    private static func longNameOfValueOption(_ letter: UInt8) -> String? {
        switch letter {
        case UInt8(ascii: "p"): "range"
        case UInt8(ascii: "m"): "max-file-size"
        case UInt8(ascii: "i"): "exclude"
        case UInt8(ascii: "I"): "include"
        case UInt8(ascii: "b"): "batch"
        case UInt8(ascii: "P"): "pid-file"
        default: nil
        }
    }

    /// A single-letter flag of some page-cache command.
    private static func isFlagLetter(_ letter: UInt8) -> Bool {
        switch letter {
        case UInt8(ascii: "r"), UInt8(ascii: "f"), UInt8(ascii: "F"), UInt8(ascii: "s"), UInt8(ascii: "q"),
            UInt8(ascii: "0"), UInt8(ascii: "v"), UInt8(ascii: "d"):
            true
        default: false
        }
    }

    private static func unnormalized() -> [String] {
        var result: [String] = []
        let argc = Int(CommandLine.argc)
        for index in 1..<max(argc, 1) {
            guard let pointer = CommandLine.unsafeArgv[index] else { continue }
            if let text = String(validatingCString: pointer) {
                result.append(text)
            } else {
                result.append(marker + String(index))
            }
        }
        return result
    }

    static func bytes(of argument: String) -> [UInt8] {
        if argument.hasPrefix(marker), let index = Int(argument.dropFirst(marker.count)),
            index > 0, index < Int(CommandLine.argc), let pointer = CommandLine.unsafeArgv[index]
        {
            return Array(UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)))
        }
        return Array(argument.utf8)
    }
}

extension BytePath {
    /// A path from the command line, with its exact bytes (see ``RawArguments``).
    init(argument: String) { self.init(RawArguments.bytes(of: argument)) }
}

// MARK: - Batch input

/// Reads newline- or NUL-separated paths from a file or standard input ("-"), as bytes, and
/// hands each to `body` as soon as its separator arrives (`find ... -print0 | mmapkit touch -0b -`
/// starts working before `find` ends).
func readBatch(_ source: String, separator: UInt8, _ body: (BytePath) -> Void) throws(PageCacheError) {
    let fd: CInt
    if source == "-" {
        fd = STDIN_FILENO
    } else {
        fd = BytePath(argument: source).withCString { open($0, O_RDONLY | O_CLOEXEC) }
        if fd < 0 { throw PageCacheError("cannot read the batch file \(source): \(errnoText(errno))") }
    }
    defer { if fd != STDIN_FILENO { close(fd) } }
    var current: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            throw PageCacheError("cannot read the batch input: \(errnoText(errno))")
        }
        if count == 0 { break }
        for byte in buffer[0..<count] {
            if byte == separator {
                if !current.isEmpty { body(BytePath(current)) }
                current.removeAll(keepingCapacity: true)
            } else {
                current.append(byte)
            }
        }
    }
    if !current.isEmpty { body(BytePath(current)) }
}

/// An error that stops a command (bad batch input, a pid file that cannot be written).
struct PageCacheError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// `"Permission denied (EACCES)"`.
package func errnoText(_ code: CInt) -> String {
    let names: [CInt: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", EIO: "EIO", EBADF: "EBADF", ENOMEM: "ENOMEM", EACCES: "EACCES",
        EFAULT: "EFAULT", EBUSY: "EBUSY", ENODEV: "ENODEV", ENOTDIR: "ENOTDIR", EISDIR: "EISDIR",
        EINVAL: "EINVAL", EMFILE: "EMFILE", ENFILE: "ENFILE", EFBIG: "EFBIG", ELOOP: "ELOOP",
        ENAMETOOLONG: "ENAMETOOLONG", ENOSYS: "ENOSYS", EOVERFLOW: "EOVERFLOW", ENXIO: "ENXIO",
        ETXTBSY: "ETXTBSY", EAGAIN: "EAGAIN", ESTALE: "ESTALE", ENOSPC: "ENOSPC", EEXIST: "EEXIST",
        EPIPE: "EPIPE", EDQUOT: "EDQUOT", EROFS: "EROFS",
    ]
    let text = String(cString: strerror(code))
    return names[code].map { "\(text) (\($0))" } ?? text
}
