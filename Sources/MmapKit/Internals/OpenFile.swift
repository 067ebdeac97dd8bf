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
        throw .invalid(.open, "path \(path.debugDescription) contains a NUL byte, which no file name can hold")
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

/// How an error message names a path: its text, with each byte that is not part of valid UTF-8
/// and each control character written `\xNN` (as `fincore --raw` does), so that the message is
/// one unambiguous line; a path longer than 1,024 bytes is cut there and its length given.
internal func escapedPath(_ path: some Collection<UInt8>) -> String {
    let limit = 1_024
    let bytes = Array(path.prefix(limit))
    var text = ""
    var position = 0  // of the next byte the parser reads
    var iterator = bytes.makeIterator()
    var parser = Unicode.UTF8.ForwardParser()
    func escape(_ run: ArraySlice<UInt8>) {
        for byte in run {
            let hex = String(byte, radix: 16)
            text += "\\x" + (byte < 16 ? "0" : "") + hex
        }
    }
    parsing: while true {
        switch parser.parseScalar(from: &iterator) {
        case .valid(let encoded):
            let scalar = Unicode.UTF8.decode(encoded)
            if scalar.properties.generalCategory == .control || scalar == "\\" {
                escape(bytes[position..<position + encoded.count])  // and a backslash, unambiguous
            } else {
                text.unicodeScalars.append(scalar)
            }
            position += encoded.count
        case .error(let length):
            escape(bytes[position..<position + length])  // not UTF-8: each byte as it is
            position += length
        case .emptyInput:
            break parsing
        }
    }
    if path.count > limit { text += "... (\(path.count) bytes)" }
    return text
}
