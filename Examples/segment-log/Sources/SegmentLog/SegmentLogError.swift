import MmapKit

/// The one error type of the log: what went wrong, in words a caller can show, with the
/// MmapKit error or errno underneath when there is one.
public struct SegmentLogError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is.
    public enum Code: Sendable, Equatable {
        /// The file is not a segment log (bad magic, version or header checksum).
        case notALog
        /// A record the writer had published as durable does not validate: the file was
        /// overwritten in place, or the medium corrupted it.
        case corrupt
        /// The file is shorter than what was mapped, indexed or made durable, or its durable end
        /// went back: another process truncated it (and maybe wrote it again in place). Reads of
        /// the lost bytes fail with ``mmap`` (MmapKit's `fault`).
        case truncated
        /// The path now names another file, another inode (the log was deleted or replaced by a
        /// rename). A shrink of the same file is ``truncated``.
        case replaced
        /// Another writer holds the log (an exclusive `flock(2)`).
        case locked
        /// The disk is full: the log could not grow. Nothing was appended; the log is readable
        /// and appends succeed again once space is freed.
        case noSpace
        /// A record index or argument out of range.
        case invalidArgument
        /// An earlier flush failed: the kernel may have dropped the dirty pages (Linux reports a
        /// writeback error once), so the log refuses further appends. Reopen it to recover.
        case poisoned
        /// A system call failed; ``errno`` says why.
        case system
        /// MmapKit reported the error in ``mmapError`` (a guarded access met `SIGBUS`: ``MmapError/Code/fault``).
        case mmap
    }

    /// What kind of failure this is.
    public var code: Code
    /// What happened, for people.
    public var message: String
    /// The MmapKit error underneath, if any.
    public var mmapError: MmapError?
    /// The errno, or 0.
    public var errno: CInt

    /// An error of `code` with a message.
    public init(_ code: Code, _ message: String, errno: CInt = 0, mmapError: MmapError? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
        self.mmapError = mmapError
    }

    /// Wraps an MmapKit error: `ENOSPC` becomes ``Code/noSpace``, a fault ``Code/mmap``.
    init(_ error: MmapError, _ context: String) {
        let code: Code = error.code == .noSpace ? .noSpace : .mmap
        self.init(code, "\(context): \(error)", errno: error.errno, mmapError: error)
    }

    /// The message, prefixed with `segment-log:`.
    public var description: String { "segment-log: \(message)" }
}
