import CPageCache
import Glibc

/// How ``Walker`` chooses files, mirroring vmtouch's options.
struct WalkOptions {
    /// Follow symbolic links met inside directories (`-f`); links named on the command line are
    /// always followed.
    var followSymlinks = false
    /// Do not descend into directories on other filesystems than the operand's (`-F`).
    var oneFileSystem = false
    /// Count a file once per name instead of once per (device, inode) (vmtouch's `-h`).
    var countHardLinks = false
    /// Skip files larger than this (`-m`).
    var maxFileSize: Int? = nil
    /// More than one operand, or a batch: the same file may be named twice, so every file is
    /// remembered.
    var severalOperands = false
    /// Only files whose name matches one of these `fnmatch(3)` patterns (`-I`, as vmtouch).
    var include: [[UInt8]] = []
    /// Skip files and directories whose name matches one of these patterns (`-i`, as vmtouch).
    var exclude: [[UInt8]] = []
}

/// Why a path was passed over without being measured. None of these is a failure.
enum SkipReason: Int, CaseIterable {
    case symlinkNotFollowed, danglingSymlink, symlinkLoop, directoryLoop, notRegular, noPageCache
    case otherFileSystem, tooLarge, excluded, symlinkChainTooLong, vanished

    var summary: String {
        switch self {
        case .symlinkNotFollowed: "symbolic links not followed (-f follows)"
        case .danglingSymlink: "dangling symbolic links"
        case .symlinkLoop: "symbolic link loops"
        case .directoryLoop: "directory loops"
        case .notRegular: "FIFOs, sockets and devices"
        case .noPageCache: "on filesystems without page cache (proc, sysfs, ...)"
        case .otherFileSystem: "on other filesystems (-F)"
        case .tooLarge: "larger than --max-file-size"
        case .excluded: "excluded by --include/--exclude"
        case .symlinkChainTooLong: "symbolic link chains over 40 links (not loops)"
        case .vanished: "removed during the walk"
        }
    }

    var key: String {
        switch self {
        case .symlinkNotFollowed: "symlinkNotFollowed"
        case .danglingSymlink: "danglingSymlink"
        case .symlinkLoop: "symlinkLoop"
        case .directoryLoop: "directoryLoop"
        case .notRegular: "notRegular"
        case .noPageCache: "noPageCache"
        case .otherFileSystem: "otherFileSystem"
        case .tooLarge: "tooLarge"
        case .excluded: "excluded"
        case .symlinkChainTooLong: "symlinkChainTooLong"
        case .vanished: "vanished"
        }
    }
}

/// What the walker hands to a command.
protocol WalkVisitor: AnyObject {
    /// A regular file, open read-only; the walker closes `fd` afterwards. `path` is the full
    /// name as bytes (valid only during the call).
    func visit(fd: CInt, path: [UInt8], stat: stat)
    /// A path passed over (`operand`: named on the command line, so worth a line on stderr).
    func skip(path: [UInt8], reason: SkipReason, detail: String, operand: Bool)
    /// A path that could not be examined: a failure (exit status 1), with the reason.
    func fail(path: [UInt8], message: String)
}

/// Walks operands depth-first at the byte level with `openat`/`fdopendir`/`readdir`,
/// streaming each regular file to a visitor as it is met. Memory is one directory's names per
/// level of depth, plus the identities of what can be met twice (``remembered``).
final class Walker {
    let options: WalkOptions
    unowned let visitor: WalkVisitor
    private(set) var directories = 0
    private(set) var foldedNames = 0
    /// What the walk has met and may meet again, so that each is counted once. Without -f and
    /// with one operand, a directory or a file with one link has one path to it within the
    /// walk unless it is (or lies below) the root of a bind mount or of a filesystem mounted
    /// twice: so the walk remembers those roots (``bindMountRoots()``), files and directories,
    /// and the files with more than one link. A directory met again is passed over with its
    /// subtree, so nothing below a second path to it is met. With -f, several operands or a
    /// batch (or when the mounts cannot be read), every file and directory is remembered.
    /// With --count-hard-links, no file is.
    private var remembered = IdentityTable()
    /// Every file and directory is remembered (see ``remembered``).
    private var rememberEveryFile: Bool
    /// ``bindMountRoots()``, read when the first directory is walked.
    private var mountRoots: [FileID]? = nil
    private var path: [UInt8] = []
    private var ancestors: [FileID] = []
    private var rootDevice: UInt64 = 0
    /// Devices known to have page cache. An array, not a set: a walk meets few devices, and a
    /// Dictionary or Set of them would cost the run-time conformance lookup that instantiating
    /// its metadata needs (a scan of every conformance record: about a third of the
    /// instructions of `mmapkit evict FILE`).
    private var devicesWithPageCache: [UInt64] = []
    private let fileFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | CPageCache_O_NOATIME()
    private var noatime = true
    var progress: ((Walker) -> Void)?
    private var visitedFiles = 0
    var filesSeen: Int { visitedFiles }

    /// Test hook: a name removed from each directory right after its names are read, so that
    /// an entry vanishes between readdir and open. Not an option; read from the environment.
    static let vanishForTesting: String? = getenv("MMAPKIT_TEST_VANISH").map { String(cString: $0) }

    init(options: WalkOptions, visitor: WalkVisitor) {
        self.options = options
        self.visitor = visitor
        rememberEveryFile = options.followSymlinks || options.severalOperands
    }

    /// Reads the bind mounts before the first directory is walked (a file operand alone needs
    /// nothing remembered); if they cannot be read, every file is remembered.
    private func readMountsOnce() {
        guard mountRoots == nil && !rememberEveryFile else { return }
        mountRoots = bindMountRoots()
        if mountRoots == nil { rememberEveryFile = true }
    }

    /// Whether a regular file (not a directory) is remembered: see ``remembered``.
    private func remembers(_ st: stat, _ id: FileID) -> Bool {
        rememberEveryFile || st.st_nlink > 1 || (mountRoots?.contains(id) ?? false)
    }

    /// Remembers a directory if it can be met again; false if it was met before.
    private func firstVisit(directory id: FileID) -> Bool {
        guard rememberEveryFile || (mountRoots?.contains(id) ?? false) else { return true }
        if remembered.insert(id) { return true }
        foldedNames += 1
        return false
    }

    // MARK: - Operands

    /// Walks one path named by the user (a command-line argument or a batch line).
    func walk(operand: BytePath) {
        path = operand.bytes
        while path.count > 1 && path.last == UInt8(ascii: "/") { path.removeLast() }
        var st = stat()
        let statResult = operand.withCString { stat($0, &st) }
        if statResult != 0 {
            let code = errno
            visitor.fail(path: path, message: linkProblem(code) ?? errnoText(code))
            return
        }
        rootDevice = UInt64(st.st_dev)
        ancestors.removeAll()
        // -i and -I apply to operands and batch lines too, to their last component (vmtouch).
        if matches(options.exclude, BytePath(path).lastComponent) {
            visitor.skip(path: path, reason: .excluded, detail: "excluded", operand: false)
            return
        }
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            readMountsOnce()
            guard firstVisit(directory: FileID(st)) else { return }
            let fd = operand.withCString { CPageCache_openat(AT_FDCWD, $0, O_RDONLY | O_CLOEXEC | O_DIRECTORY) }
            guard fd >= 0 else {
                visitor.fail(path: path, message: "cannot open the directory: \(errnoText(-fd))")
                return
            }
            if skipsOperandWithoutPageCache(fd: fd, device: UInt64(st.st_dev)) { return }
            directories += 1
            ancestors.append(FileID(st))
            walkDirectory(fd)
        case S_IFREG:
            var fd = operand.withCString { CPageCache_openat(AT_FDCWD, $0, fileFlags) }
            if fd == -EPERM {
                fd = operand.withCString { CPageCache_openat(AT_FDCWD, $0, fileFlags & ~CPageCache_O_NOATIME()) }
            }
            guard fd >= 0 else {
                visitor.fail(path: path, message: errnoText(-fd))
                return
            }
            if skipsOperandWithoutPageCache(fd: fd, device: UInt64(st.st_dev)) { return }
            file(fd: fd, viaLink: false, operand: true)
        default:
            visitor.fail(path: path, message: nonRegularDescription(st.st_mode))
        }
    }

    /// For a failed `stat`: a clearer message when a symbolic link is the cause.
    private func linkProblem(_ code: CInt) -> String? {
        if code == ELOOP {
            return isSymlinkLoop(path)
                ? "symbolic link loop (\(errnoText(ELOOP)))"
                : "too many levels of symbolic links (a chain of over 40 links, not a loop; ELOOP)"
        }
        guard code == ENOENT else { return nil }
        var st = stat()
        let isLink = BytePath(path).withCString { lstat($0, &st) } == 0 && st.st_mode & S_IFMT == S_IFLNK
        guard isLink else { return nil }
        var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = BytePath(path).withCString { readlink($0, &target, Int(PATH_MAX)) }
        let destination = count > 0 ? BytePath(target[0..<count].map { UInt8(bitPattern: $0) }).escaped : "?"
        return "dangling symbolic link (to \(destination))"
    }

    /// Whether the symbolic links from `start` lead back to one already met (a loop), rather
    /// than through a chain longer than the kernel follows (40 links; both are ELOOP).
    private func isSymlinkLoop(_ start: [UInt8]) -> Bool {
        var current = start
        var links: [FileID] = []
        for _ in 0..<1024 {
            var st = stat()
            if BytePath(current).withCString({ lstat($0, &st) }) != 0 { return errno == ELOOP }
            guard st.st_mode & S_IFMT == S_IFLNK else { return false }
            let id = FileID(st)
            if links.contains(id) { return true }
            links.append(id)
            var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = BytePath(current).withCString { readlink($0, &target, Int(PATH_MAX)) }
            guard count > 0 else { return false }
            let bytes = target[0..<count].map { UInt8(bitPattern: $0) }
            if bytes.first == UInt8(ascii: "/") {
                current = bytes
            } else {
                let slash = current.lastIndex(of: UInt8(ascii: "/"))
                current = (slash.map { Array(current[...$0]) } ?? []) + bytes
            }
        }
        return true
    }

    // MARK: - Directories

    private struct Entry {
        var start: Int32
        var length: Int32
        var type: UInt8
    }

    private func walkDirectory(_ fd: CInt) {
        guard let directory = fdopendir(fd) else {
            let code = errno
            close(fd)
            visitor.fail(path: path, message: "cannot read the directory: \(errnoText(code))")
            return
        }
        defer { closedir(directory) }
        // Read the names first (one buffer, NUL-terminated), then visit them in byte order.
        var names: [UInt8] = []
        var entries: [Entry] = []
        while true {
            errno = 0
            guard let entry = readdir(directory) else {
                if errno != 0 {
                    visitor.fail(path: path, message: "cannot read the directory: \(errnoText(errno))")
                }
                break
            }
            let start = names.count
            let type = entry.pointee.d_type
            withUnsafeBytes(of: &entry.pointee.d_name) { raw in
                let length = strnlen(raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
                names.append(contentsOf: raw[0..<length])
            }
            let length = names.count - start
            if (length == 1 && names[start] == UInt8(ascii: "."))
                || (length == 2 && names[start] == UInt8(ascii: ".") && names[start + 1] == UInt8(ascii: "."))
            {
                names.removeLast(length)
                continue
            }
            names.append(0)
            entries.append(Entry(start: Int32(start), length: Int32(length), type: type))
        }
        names.withUnsafeBufferPointer { buffer in
            entries.sort { a, b in
                let common = Int(min(a.length, b.length))
                let order = memcmp(buffer.baseAddress! + Int(a.start), buffer.baseAddress! + Int(b.start), common)
                return order != 0 ? order < 0 : a.length < b.length
            }
        }
        let dirfd = Glibc.dirfd(directory)
        if let name = Self.vanishForTesting { _ = unlinkat(dirfd, name, 0) }
        let parentLength = path.count
        for entry in entries {
            path.removeSubrange(parentLength...)
            if path.last != UInt8(ascii: "/") { path.append(UInt8(ascii: "/")) }
            let name = names[Int(entry.start)..<Int(entry.start + entry.length)]
            path.append(contentsOf: name)
            names.withUnsafeBufferPointer { buffer in
                let cName = UnsafeRawPointer(buffer.baseAddress! + Int(entry.start)).assumingMemoryBound(to: CChar.self)
                self.entry(in: dirfd, name: cName, nameBytes: name, type: entry.type)
            }
        }
        path.removeSubrange(parentLength...)
    }

    private func matches(_ patterns: [[UInt8]], _ name: ArraySlice<UInt8>) -> Bool {
        guard !patterns.isEmpty else { return false }
        var terminated = Array(name)
        terminated.append(0)
        return terminated.withUnsafeBufferPointer { nameBuffer in
            patterns.contains { pattern in
                pattern.withUnsafeBufferPointer { patternBuffer in
                    UnsafeRawPointer(patternBuffer.baseAddress!).withMemoryRebound(
                        to: CChar.self,
                        capacity: pattern.count
                    ) {
                        pat in
                        UnsafeRawPointer(nameBuffer.baseAddress!).withMemoryRebound(
                            to: CChar.self,
                            capacity: terminated.count
                        ) { fnmatch(pat, $0, 0) == 0 }
                    }
                }
            }
        }
    }

    private func entry(in dirfd: CInt, name: UnsafePointer<CChar>, nameBytes: ArraySlice<UInt8>, type: UInt8) {
        if matches(options.exclude, nameBytes) {
            visitor.skip(path: path, reason: .excluded, detail: "excluded", operand: false)
            return
        }
        var kind = type
        var viaLink = false
        if kind == UInt8(DT_UNKNOWN) || kind == UInt8(DT_LNK) {
            var st = stat()
            if fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
                failOrVanish(errno)
                return
            }
            kind = directoryType(st.st_mode)
        }
        if kind == UInt8(DT_LNK) {
            guard options.followSymlinks else {
                visitor.skip(
                    path: path,
                    reason: .symlinkNotFollowed,
                    detail: "symbolic link not followed",
                    operand: false
                )
                return
            }
            var st = stat()
            if fstatat(dirfd, name, &st, 0) != 0 {
                let code = errno
                if code == ELOOP && isSymlinkLoop(path) {
                    visitor.skip(path: path, reason: .symlinkLoop, detail: "symbolic link loop", operand: false)
                } else if code == ELOOP {
                    visitor.skip(
                        path: path,
                        reason: .symlinkChainTooLong,
                        detail: "too many levels of symbolic links (over 40, not a loop)",
                        operand: false
                    )
                } else if code == ENOENT {
                    visitor.skip(path: path, reason: .danglingSymlink, detail: "dangling symbolic link", operand: false)
                } else {
                    visitor.fail(path: path, message: errnoText(code))
                }
                return
            }
            kind = directoryType(st.st_mode)
            viaLink = true
        }
        let noFollow = viaLink ? 0 : CPageCache_O_NOFOLLOW()
        switch kind {
        case UInt8(DT_REG):
            var fd = CPageCache_openat(
                dirfd,
                name,
                (noatime ? fileFlags : fileFlags & ~CPageCache_O_NOATIME()) | noFollow
            )
            if fd == -EPERM && noatime {
                // O_NOATIME needs ownership (or CAP_FOWNER); fall back for the rest of the walk.
                noatime = false
                fd = CPageCache_openat(dirfd, name, (fileFlags & ~CPageCache_O_NOATIME()) | noFollow)
            }
            guard fd >= 0 else {
                failOrVanish(-fd)
                return
            }
            file(fd: fd, viaLink: viaLink, operand: false)
        case UInt8(DT_DIR):
            let fd = CPageCache_openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_DIRECTORY | noFollow)
            guard fd >= 0 else {
                failOrVanish(-fd, "cannot open the directory: ")
                return
            }
            var st = stat()
            fstat(fd, &st)
            let device = UInt64(st.st_dev)
            if options.oneFileSystem && device != rootDevice {
                close(fd)
                visitor.skip(path: path, reason: .otherFileSystem, detail: "on another filesystem", operand: false)
                return
            }
            if ancestors.last.map({ $0.device != device }) ?? true, let kind = pseudoFileSystem(fd: fd, device: device)
            {
                close(fd)
                visitor.skip(path: path, reason: .noPageCache, detail: "on \(kind), no page cache", operand: false)
                return
            }
            let id = FileID(st)
            if ancestors.contains(id) {
                close(fd)
                visitor.skip(path: path, reason: .directoryLoop, detail: "directory loop", operand: false)
                return
            }
            // A directory reached twice (a bind mount, a link with -f) is walked once.
            guard firstVisit(directory: id) else {
                close(fd)
                return
            }
            directories += 1
            ancestors.append(id)
            walkDirectory(fd)
            ancestors.removeLast()
        default:
            visitor.skip(path: path, reason: .notRegular, detail: "not a regular file", operand: false)
        }
    }

    /// Closes `fd` and skips the operand (with one line) when it is on a filesystem without page
    /// cache; otherwise returns false.
    private func skipsOperandWithoutPageCache(fd: CInt, device: UInt64) -> Bool {
        guard let kind = pseudoFileSystem(fd: fd, device: device) else { return false }
        close(fd)
        visitor.skip(path: path, reason: .noPageCache, detail: "is on \(kind), which has no page cache", operand: true)
        return true
    }

    /// An entry that readdir listed but that is gone now (a log rotated meanwhile) is a skip,
    /// as vmtouch passes over it; any other error is a failure.
    private func failOrVanish(_ code: CInt, _ prefix: String = "") {
        if code == ENOENT {
            visitor.skip(path: path, reason: .vanished, detail: "removed during the walk", operand: false)
        } else {
            visitor.fail(path: path, message: prefix + errnoText(code))
        }
    }

    // MARK: - Files

    private func file(fd: CInt, viaLink: Bool, operand: Bool) {
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            visitor.fail(path: path, message: errnoText(errno))
            return
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            visitor.skip(path: path, reason: .notRegular, detail: "not a regular file", operand: operand)
            return
        }
        if !options.include.isEmpty && !matches(options.include, path[...].lastComponentSlice) {
            visitor.skip(path: path, reason: .excluded, detail: "not included", operand: false)
            return
        }
        if let limit = options.maxFileSize, Int(st.st_size) > limit {
            visitor.skip(path: path, reason: .tooLarge, detail: "larger than \(limit) bytes", operand: operand)
            return
        }
        if !options.countHardLinks {
            let id = FileID(st)
            if remembers(st, id) && !remembered.insert(id) {
                foldedNames += 1
                return
            }
        }
        visitedFiles += 1
        visitor.visit(fd: fd, path: path, stat: st)
        progress?(self)
    }

    /// The name of a filesystem without page cache that `fd` is on, or nil. Cached per device.
    private func pseudoFileSystem(fd: CInt, device: UInt64) -> String? {
        if devicesWithPageCache.contains(device) { return nil }
        let name = pseudoFileSystemName(CPageCache_filesystemType(fd))
        if name == nil { devicesWithPageCache.append(device) }
        return name
    }
}

/// The name of a filesystem type (`statfs` `f_type`) that has no page cache, or nil.
private func pseudoFileSystemName(_ type: Int) -> String? {
    switch type {
    case 0x9fa0: "proc"
    case 0x6265_6572: "sysfs"
    case 0x6462_6720: "debugfs"
    case 0x7472_6163: "tracefs"
    case 0x7363_6673: "securityfs"
    case 0x6367_7270: "cgroup2"
    case 0x0027_e0eb: "cgroup"
    case 0x6265_6570: "configfs"
    case 0x6165_676C: "pstore"
    case 0xcafe_4a11: "bpf"
    case 0x1cd1: "devpts"
    case 0xde5e_81e4: "efivarfs"
    case 0x6573_5543: "fusectl"
    case 0x4249_4e4d: "binfmt_misc"
    default: nil
    }
}

private func directoryType(_ mode: mode_t) -> UInt8 {
    switch mode & S_IFMT {
    case S_IFREG: UInt8(DT_REG)
    case S_IFDIR: UInt8(DT_DIR)
    case S_IFLNK: UInt8(DT_LNK)
    default: UInt8(DT_FIFO)
    }
}

func nonRegularDescription(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFIFO: "is a FIFO, which has no page cache"
    case S_IFSOCK: "is a socket, which has no page cache"
    case S_IFCHR: "is a character device, which has no page cache"
    case S_IFBLK: "is a block device; pass a file on it instead"
    default: "is not a regular file"
    }
}

extension ArraySlice where Element == UInt8 {
    var lastComponentSlice: ArraySlice<UInt8> {
        let start = self.lastIndex(of: UInt8(ascii: "/")).map { $0 + 1 } ?? startIndex
        return self[start...]
    }
}
