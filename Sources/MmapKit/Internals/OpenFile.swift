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
    try MmapError.check(error, .open, "cannot open '\(path)'")
    // A close error after a successful map changes nothing for the mapping.
    defer { closeDescriptor(fd) }
    return try naming(fd, as: path, body)
}

/// Opens the NUL-terminated path `path` with `flags | O_CLOEXEC | O_NONBLOCK`, runs `body` with
/// the descriptor, closes it: ``withOpenFile(_:_:_:)`` for a path given as bytes (a swift-system
/// `FilePath`), which keeps a name that is not UTF-8 exact. A C string cannot hold a NUL byte.
///
/// - Parameter description: How error messages name the file (never used to open it).
@unsafe
internal func withOpenFile<R>(
    platformPath path: UnsafePointer<CChar>,
    description: String,
    _ flags: CInt,
    _ body: (CInt) throws(MmapError) -> R
) throws(MmapError) -> R {
    var fd: CInt = -1
    try MmapError.check(
        unsafe system_open(path, flags | O_NONBLOCK, 0, &fd),
        .open,
        "cannot open '\(description)'"
    )
    defer { closeDescriptor(fd) }
    return try naming(fd, as: description, body)
}

/// Runs `body(fd)`; an error that names "descriptor N" names the file instead: the caller gave a
/// path and never saw the descriptor MmapKit opened.
private func naming<R>(
    _ fd: CInt,
    as name: String,
    _ body: (CInt) throws(MmapError) -> R
) throws(MmapError) -> R {
    do throws(MmapError) {
        return try body(fd)
    } catch {
        var renamed = error
        renamed.message = error.message.replacing("descriptor \(fd)", with: "'\(name)'")
        throw renamed
    }
}
