internal import Glibc

/// Opens `path` with `flags | O_CLOEXEC | O_NONBLOCK`, runs `body` with the descriptor, closes it.
///
/// `O_NONBLOCK` keeps a FIFO from blocking the open until a writer appears (the mapping then
/// fails with a clear error); it has no effect on regular files.
internal func withOpenFile<R>(
    _ path: String,
    _ flags: CInt,
    _ body: (CInt) throws(MmapError) -> R
) throws(MmapError) -> R {
    var fd: CInt = -1
    // `withCString` reads a native string in place (the implicit String-to-pointer conversion
    // would copy it to the heap). A C path ends at the first NUL: "a\0b" would open "a", another
    // file than the caller named, so a string whose C length is short of its UTF-8 count is
    // refused (`strlen` is vectorized; a generic `utf8.contains(0)` cost ~30 instructions a byte).
    let error = unsafe path.withCString { cPath -> CInt? in
        guard unsafe strlen(cPath) == path.utf8.count else { return nil }
        return unsafe system_open(cPath, flags | O_NONBLOCK, 0, &fd)
    }
    guard let error else {
        throw .invalid(.open, "path '\(escapedPath(path.utf8))' contains a NUL byte, which no file name can hold")
    }
    try MmapError.check(error, .open, "cannot open '\(escapedPath(path.utf8))'")
    // A close error after a successful map changes nothing for the mapping.
    defer { closeDescriptor(fd) }
    return try naming(fd, as: escapedPath(path.utf8), body)
}

/// Opens the NUL-terminated path `path` with `flags | O_CLOEXEC | O_NONBLOCK`, runs `body` with
/// the descriptor, closes it: ``withOpenFile(_:_:_:)`` for a path given as bytes (a swift-system
/// `FilePath`), which keeps a name that is not UTF-8 exact. A C string cannot hold a NUL byte.
/// Error messages name the file with ``escapedPath(_:)`` of its bytes.
@unsafe
internal func withOpenFile<R>(
    platformPath path: UnsafePointer<CChar>,
    _ flags: CInt,
    _ body: (CInt) throws(MmapError) -> R
) throws(MmapError) -> R {
    var fd: CInt = -1
    let bytes = unsafe UnsafeRawBufferPointer(start: path, count: strlen(path))
    try MmapError.check(
        unsafe system_open(path, flags | O_NONBLOCK, 0, &fd),
        .open,
        "cannot open '\(unsafe escapedPath(bytes))'"
    )
    defer { closeDescriptor(fd) }
    return try naming(fd, as: unsafe escapedPath(bytes), body)
}

/// Runs `body(fd)`; an error that names "descriptor N" names the file instead: the caller gave a
/// path and never saw the descriptor MmapKit opened.
private func naming<R>(
    _ fd: CInt,
    as name: @autoclosure () -> String,
    _ body: (CInt) throws(MmapError) -> R
) throws(MmapError) -> R {
    do throws(MmapError) {
        return try body(fd)
    } catch {
        var renamed = error
        renamed.message = error.message.replacing("descriptor \(fd)", with: "'\(name())'")
        throw renamed
    }
}

/// How an error message names a path: its text, with each byte that is not part of valid UTF-8,
/// each ASCII control character and a backslash written `\xNN` (as `fincore --raw` does), and
/// each other character that prints invisibly or reorders text (C1 controls, format characters
/// such as U+202E, line and paragraph separators) written `\u{XXXX}`, so that the message is one
/// unambiguous line. A name longer than 1,024 characters once escaped is cut there, at a
/// character boundary, and its length in bytes given.
internal func escapedPath(_ path: some Collection<UInt8>) -> String {
    let limit = 1_024
    let bytes = Array(path)
    var text = ""
    var length = 0  // of `text`, in characters as escaped
    var position = 0  // of the next byte the parser reads
    var iterator = bytes.makeIterator()
    var parser = Unicode.UTF8.ForwardParser()
    func append(_ piece: String, count: Int) -> Bool {
        guard length + count <= limit else { return false }
        text += piece
        length += count
        return true
    }
    func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16, uppercase: width > 2)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
    parsing: while true {
        let piece: String
        switch parser.parseScalar(from: &iterator) {
        case .valid(let encoded):
            let scalar = Unicode.UTF8.decode(encoded)
            switch scalar.properties.generalCategory {
            case .control where scalar.isASCII, _ where scalar == "\\":
                piece = "\\x" + hex(scalar.value, width: 2)
            case .control, .format, .lineSeparator, .paragraphSeparator:
                piece = "\\u{" + hex(scalar.value, width: 4) + "}"
            default:
                piece = String(scalar)
            }
            position += encoded.count
        case .error(let count):
            // Bytes the parser could not decode: each one as it is.
            piece = bytes[position..<position + count].map { "\\x" + hex(UInt32($0), width: 2) }.joined()
            position += count
        case .emptyInput:
            break parsing
        }
        guard append(piece, count: piece.count) else {
            text += "... (\(bytes.count) bytes)"
            break parsing
        }
    }
    return text
}
