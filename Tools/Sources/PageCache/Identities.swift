import CPageCache
import Glibc

/// A file's identity: a hard link or a symbolic link to a file already counted is folded.
struct FileID: Equatable {
    let device: UInt64
    let inode: UInt64
    init(_ st: stat) {
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }
}

/// The (device, inode) pairs a walk has met, in 8 bytes a pair (plus the free slots): one
/// open-addressing table of inode numbers per device, linear probing, grown to twice its size
/// at three quarters full. Exact, unlike a table of hashes: a pair is found only if it was
/// inserted. A `Set<FileID>` of every file and directory met took about 2.6 MiB (its storage
/// and, while growing, the old and the new one) for the 70,000 of `/usr/lib`; the walk now keeps
/// only what can be met twice (``Walker``): 19 files there. With -f it keeps everything, in
/// half the bytes a `Set` needed.
struct IdentityTable {
    private var tables: [InodeTable] = []

    /// Inserts `id`; returns false if it was there already.
    mutating func insert(_ id: FileID) -> Bool {
        for table in tables where table.device == id.device { return table.insert(id.inode) }
        let table = InodeTable(device: id.device)
        tables.append(table)
        return table.insert(id.inode)
    }

    /// The number of identities held, and the bytes of their tables.
    var count: Int { tables.reduce(0) { $0 + $1.count } }
    var bytes: Int { tables.reduce(0) { $0 + $1.capacity * 8 } }
}

/// The inode numbers met on one device. Slot value 0 means free; inode 0 (which Linux does not
/// hand out, but a FUSE filesystem might) is kept apart in `hasZero`.
private final class InodeTable {
    let device: UInt64
    private var slots: UnsafeMutablePointer<UInt64>
    private(set) var capacity: Int
    private var shift: UInt64
    private(set) var count = 0
    private var hasZero = false

    init(device: UInt64) {
        self.device = device
        capacity = 64
        shift = 64 - 6
        slots = Self.allocate(capacity)
    }

    deinit { slots.deallocate() }

    private static func allocate(_ capacity: Int) -> UnsafeMutablePointer<UInt64> {
        let slots = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
        slots.initialize(repeating: 0, count: capacity)
        return slots
    }

    /// Fibonacci hashing: inode numbers are often consecutive, and the top bits of the product
    /// spread them over the table.
    private func home(_ inode: UInt64) -> Int {
        Int(truncatingIfNeeded: (inode &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    func insert(_ inode: UInt64) -> Bool {
        if inode == 0 {
            if hasZero { return false }
            hasZero = true
            count += 1
            return true
        }
        let mask = capacity - 1
        var index = home(inode)
        while true {
            let slot = slots[index]
            if slot == inode { return false }
            if slot == 0 { break }
            index = (index + 1) & mask
        }
        slots[index] = inode
        count += 1
        if count * 4 >= capacity * 3 { grow() }
        return true
    }

    private func grow() {
        let old = slots
        let oldCapacity = capacity
        capacity *= 2
        shift -= 1
        slots = Self.allocate(capacity)
        let mask = capacity - 1
        for position in 0..<oldCapacity where old[position] != 0 {
            var index = home(old[position])
            while slots[index] != 0 { index = (index + 1) & mask }
            slots[index] = old[position]
        }
        old.deallocate()
    }
}

/// The identities of the roots of bind mounts (and of filesystems mounted more than once): the
/// only places where a file or directory with one name can be reached by a second path within
/// one walk without following symbolic links. Read from `/proc/self/mountinfo`, once, when the
/// first directory is walked; nil when that cannot be read or a mount point cannot be
/// examined, and the walk then remembers every file, as it did before.
func bindMountRoots() -> [FileID]? {
    let fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var text: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16384)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        if count < 0 { return nil }
        if count == 0 { break }
        text += buffer[0..<count]
    }
    // Each line: id parent major:minor root mount-point options … (proc(5)).
    var mounts: [(device: ArraySlice<UInt8>, root: ArraySlice<UInt8>, point: ArraySlice<UInt8>)] = []
    for line in text.split(separator: UInt8(ascii: "\n")) {
        let fields = line.split(separator: UInt8(ascii: " "), maxSplits: 5, omittingEmptySubsequences: false)
        guard fields.count >= 5 else { return nil }
        mounts.append((fields[2], fields[3], fields[4]))
    }
    var roots: [FileID] = []
    for mount in mounts {
        let isWholeFilesystem = mount.root.count == 1 && mount.root.first == UInt8(ascii: "/")
        let mountedTwice = mounts.reduce(0) { $0 + ($1.device == mount.device ? 1 : 0) } > 1
        guard !isWholeFilesystem || mountedTwice else { continue }
        var st = stat()
        var path = unescapeMountField(mount.point)
        path.append(0)
        let result = path.withUnsafeBufferPointer {
            UnsafeRawPointer($0.baseAddress!).withMemoryRebound(to: CChar.self, capacity: path.count) {
                fstatat(AT_FDCWD, $0, &st, AT_SYMLINK_NOFOLLOW | CPageCache_AT_NO_AUTOMOUNT())
            }
        }
        if result != 0 {
            // Mounted over, or gone since: nothing to reach there. Anything else: be safe.
            if errno == ENOENT { continue }
            return nil
        }
        roots.append(FileID(st))
    }
    return roots
}

/// A mountinfo field with its octal escapes (`\040` for a space, `\011`, `\012`, `\134`) undone.
private func unescapeMountField(_ field: ArraySlice<UInt8>) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = field.startIndex
    while index < field.endIndex {
        let byte = field[index]
        if byte == UInt8(ascii: "\\") {
            let digits = field[(index + 1)...].prefix(3)
            if digits.count == 3, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }) {
                bytes.append(digits.reduce(0) { $0 &* 8 &+ ($1 - UInt8(ascii: "0")) })
                index += 4
                continue
            }
        }
        bytes.append(byte)
        index += 1
    }
    return bytes
}
