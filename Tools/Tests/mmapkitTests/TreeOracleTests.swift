import Foundation
import Glibc
import Testing

/// A tree with every awkward thing a vmtouch user meets, partly in the page cache:
///
///     a (61 pages + 16 bytes, 20 cached)   hard (hard link to a)   sym -> a
///     sub/b (100 pages, all cached)   sub/up -> ..   sub/<0xff 0xfe>name (3 pages, 1 cached)
///     nested/deep/c (10 pages, none cached)   empty   sparse (64 MiB hole)   fifo
///     dangle -> nowhere   loop1 -> loop2 -> loop1   devnull -> /dev/null
final class AwkwardTree {
    let scratch: Scratch
    static let badName: [UInt8] = [0xFF, 0xFE] + Array("name".utf8)
    var root: String { scratch.path }

    init() throws {
        scratch = try Scratch()
        try FileManager.default.removeItem(atPath: scratch.file.path)
        try scratch.write("a", pages: 62, lastPageBytes: 16)
        #expect(link(scratch.at("a"), scratch.at("hard")) == 0)
        #expect(symlink("a", scratch.at("sym")) == 0)
        try FileManager.default.createDirectory(atPath: scratch.at("sub"), withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: scratch.at("nested/deep"), withIntermediateDirectories: true)
        try scratch.write("sub/b", pages: 100)
        #expect(symlink("..", scratch.at("sub/up")) == 0)
        try scratch.writeBytes(Array("sub/".utf8) + Self.badName, pages: 3)
        try scratch.write("nested/deep/c", pages: 10)
        try scratch.write("empty", pages: 0)
        FileManager.default.createFile(atPath: scratch.at("sparse"), contents: Data())
        #expect(truncate(scratch.at("sparse"), 64 << 20) == 0)
        #expect(mkfifo(scratch.at("fifo"), 0o644) == 0)
        #expect(symlink("nowhere", scratch.at("dangle")) == 0)
        #expect(symlink("loop2", scratch.at("loop1")) == 0)
        #expect(symlink("loop1", scratch.at("loop2")) == 0)
        #expect(symlink("/dev/null", scratch.at("devnull")) == 0)
        try scratch.cache("a", pages: 0)
        try scratch.cache("sub/b", pages: 100)
        try scratch.cache("nested/deep/c", pages: 0)
        // Read one page of the odd name without readahead pulling in the rest.
        let fd = (Array(scratch.at("sub").utf8) + [UInt8(ascii: "/")] + Self.badName + [0]).withUnsafeBufferPointer {
            $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_RDONLY) }
        }
        posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM)
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        var page = [UInt8](repeating: 0, count: 4096)
        _ = pread(fd, &page, 4096, 0)
        close(fd)
        // Twenty pages of a, without readahead.
        let a = open(scratch.at("a"), O_RDONLY)
        posix_fadvise(a, 0, 0, POSIX_FADV_RANDOM)
        for index in 0..<20 { _ = pread(a, &page, 4096, off_t(index * 4096)) }
        close(a)
    }
}

/// vmtouch's summary numbers: files, directories, resident and total pages.
func vmtouchSummary(_ arguments: [String]) throws -> (files: Int, directories: Int, resident: Int, pages: Int) {
    let result = try run(([vmtouchPath] + arguments).map { Array($0.utf8) })
    let pages = result.summary("Resident Pages")
    return (
        result.summary("Files").first ?? -1, result.summary("Directories").first ?? -1, pages.first ?? -1,
        pages.last ?? -1
    )
}

@Suite(.serialized) struct TreeOracleTests {
    @Test(arguments: [[String](), ["-f"], ["--count-hard-links"], ["-p", "4K-40K"], ["-p", "100K"]])
    func treeTotalsAgreeWithVmtouch(options: [String]) throws {
        guard haveVmtouch else {
            Issue.record("vmtouch is not installed (.ci/run installs it); cannot compare")
            return
        }
        let tree = try AwkwardTree()
        let ours = try mmapkit(["residency", "--json"] + options + [tree.root])
        #expect(ours.status == 0, "a tree with links, loops, FIFOs and odd names is healthy: \(ours.stderr)")
        #expect(ours.stderr.isEmpty, "skips inside a walk are counted, not printed: \(ours.stderr)")
        let total = try ours.total()
        let theirs = try vmtouchSummary(options.map { $0 == "--count-hard-links" ? "-h" : $0 } + [tree.root])
        #expect(Int(total["files"] ?? -1) == theirs.files, "\(options): \(total) vs \(theirs)")
        #expect(Int(total["directories"] ?? -1) == theirs.directories, "\(options)")
        #expect(Int(total["residentPages"] ?? -1) == theirs.resident, "\(options)")
        #expect(Int(total["pages"] ?? -1) == theirs.pages, "\(options)")
    }

    @Test func everyFileAgreesWithFincore() throws {
        guard haveFincore else {
            Issue.record("fincore (util-linux) is not installed; cannot compare")
            return
        }
        let tree = try AwkwardTree()
        let files = try #require(try mmapkit(["residency", "--json", tree.root]).json()["files"] as? [[String: Any]])
        #expect(files.count == 6)  // a, b, the odd name, c, empty, sparse
        for file in files {
            let name: [UInt8] =
                if let encoded = file["pathBytes"] as? String { Array(try #require(Data(base64Encoded: encoded))) } else
                {
                    Array((file["path"] as! String).utf8)
                }
            let fincore = try run(
                [fincorePath, "--raw", "--noheadings", "--output", "PAGES"].map { Array($0.utf8) } + [name]
            )
            let pages = Int(fincore.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(pages == file["residentPages"] as? Int, "\(file) vs fincore \(fincore.stdout) \(fincore.stderr)")
        }
        let byName = Dictionary(uniqueKeysWithValues: files.map { (($0["path"] as! String), $0) })
        #expect(byName[tree.scratch.at("sub/b")]?["residentPages"] as? Int == 100)
        #expect(byName[tree.scratch.at("a")]?["residentPages"] as? Int == 20)
    }

    @Test func hardLinksAndSymlinksToAFileAlreadyCountedAreFolded() throws {
        let tree = try AwkwardTree()
        let result = try mmapkit([
            "residency", "--json", tree.scratch.at("a"), tree.scratch.at("hard"), tree.scratch.at("sym"),
        ])
        #expect(result.status == 0)
        let total = try result.total()
        #expect(
            total["files"] == 1 && total["foldedNames"] == 2 && total["pages"] == 62 && total["residentPages"] == 20
        )
        let text = try mmapkit(["residency", tree.scratch.at("a"), tree.scratch.at("hard")])
        #expect(text.stdout.contains("Files: 1  (1 more name folded"), "\(text.stdout)")
        // --count-hard-links counts every name, as vmtouch -h does.
        let every = try mmapkit([
            "residency", "--json", "--count-hard-links", tree.scratch.at("a"), tree.scratch.at("hard"),
        ])
        #expect(try every.total()["files"] == 2)
    }

    @Test func namesThatAreNotUTF8AreMeasuredEscapedAndExactInJSON() throws {
        let tree = try AwkwardTree()
        let odd = Array(tree.scratch.at("sub").utf8) + [UInt8(ascii: "/")] + AwkwardTree.badName
        let direct = try mmapkit(bytes: [Array("residency".utf8), odd])
        #expect(direct.status == 0, "\(direct.stderr)")
        #expect(direct.stdout.contains("/sub/\\xff\\xfename"), "escaped as fincore --raw does: \(direct.stdout)")
        #expect(direct.summary("Resident Pages") == [1, 3])

        let json = try mmapkit(bytes: [Array("residency".utf8), Array("--json".utf8), odd])
        let file = try #require((try json.json()["files"] as? [[String: Any]])?.first)
        #expect(!(file["path"] as! String).contains("\u{FFFD}"))
        #expect(Data(base64Encoded: file["pathBytes"] as! String).map(Array.init) == odd)

        // Inside a walk, and from a NUL-separated batch on stdin.
        let walked = try mmapkit(["residency", tree.scratch.at("sub")])
        #expect(walked.stdout.contains("\\xff\\xfename") && walked.status == 0)
        let batch = try mmapkit(
            ["residency", "--summary-only", "-b", "-", "-0"],
            input: odd + [0] + Array(tree.scratch.at("a").utf8) + [0]
        )
        #expect(batch.status == 0, "\(batch.stderr)")
        #expect(batch.summary("Files") == [2] && batch.summary("Resident Pages") == [21, 65], "\(batch.stdout)")
    }

    @Test func loopsAndDanglingLinksAreNamedForWhatTheyAre() throws {
        let tree = try AwkwardTree()
        let operands = try mmapkit(["residency", tree.scratch.at("loop1"), tree.scratch.at("dangle")])
        #expect(operands.status == 1)
        #expect(
            operands.stderr.contains("loop1: symbolic link loop (Too many levels of symbolic links (ELOOP))"),
            "\(operands.stderr)"
        )
        #expect(operands.stderr.contains("dangle: dangling symbolic link (to nowhere)"), "\(operands.stderr)")
        #expect(!operands.stderr.contains("loop1: dangling"))

        let followed = try mmapkit(["residency", "--json", "-f", tree.root])
        #expect(followed.status == 0)
        let skipped = try #require(try followed.json()["skippedCounts"] as? [String: Int])
        #expect(
            skipped["symlinkLoop"] == 2 && skipped["danglingSymlink"] == 1 && skipped["directoryLoop"] == 1,
            "\(skipped)"
        )
        #expect(skipped["notRegular"] == 2, "the FIFO and the link to /dev/null: \(skipped)")
        let shown = try mmapkit(["residency", "-f", "--show-skips", tree.root])
        #expect(shown.stderr.contains("loop1: skipped: symbolic link loop"), "\(shown.stderr)")
        #expect(shown.stderr.contains("sub/up: skipped: directory loop"), "\(shown.stderr)")
    }

    @Test func anUnreadableDirectoryIsAFailureThatNamesTheReasonAndTheTotalIsStillPrinted() throws {
        let tree = try AwkwardTree()
        // Root reads any directory, so as root the walk runs as nobody (mode 0700 keeps nobody
        // out of root's directory); otherwise mode 000 keeps the owner out.
        #expect(chmod(tree.scratch.at("nested"), getuid() == 0 ? 0o700 : 0o000) == 0)
        let result = try asNobody([toolURL.path, "residency", tree.root])
        #expect(result.status == 1)
        #expect(
            result.stderr.contains("/nested: cannot open the directory: Permission denied (EACCES)"),
            "\(result.stderr)"
        )
        #expect(result.stdout.contains("Files:") && result.stdout.contains("Errors: 1"), "\(result.stdout)")
    }

    @Test func pseudoFilesystemsAreSkippedNotFailed() throws {
        let result = try mmapkit(["residency", "-r", "/sys/kernel", "/proc/self/status"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            result.stderr.contains("/sys/kernel: skipped: is on sysfs, which has no page cache"),
            "\(result.stderr)"
        )
        #expect(result.stderr.contains("/proc/self/status: skipped: is on proc"), "\(result.stderr)")
        #expect(result.stdout.contains("Resident Pages:"), "the total is always printed")
    }

    @Test func evictByANonOwnerSaysTheResidencyIsHiddenInsteadOfLying() throws {
        guard getuid() == 0 else {
            print("skipped: needs root to drop to nobody against a root-owned file")
            return
        }
        let scratch = try Scratch()
        try scratch.cache("data", pages: 4096)
        let result = try asNobody([toolURL.path, "evict", "--json", scratch.file.path])
        #expect(result.status == 0, "\(result.stderr)")
        let file = try #require((try result.json()["files"] as? [[String: Any]])?.first)
        #expect(file["hidden"] as? Bool == true, "\(file)")
        #expect(file["residentPagesAfter"] == nil, "no made-up number: \(file)")
        let text = try asNobody([toolURL.path, "residency", scratch.file.path])
        #expect(text.stdout.contains("residency hidden by the kernel"), "\(text.stdout)")
        // The eviction itself worked: root sees it.
        #expect(try mmapkit(["residency", "--json", scratch.file.path]).total()["residentPages"] == 0)
    }

    @Test func cachestatShowsDirtyPagesAndEvictWritesThemBack() throws {
        let scratch = try Scratch()
        let dirty = scratch.at("dirty")
        // Plain write(2), no fsync (Foundation's atomic write would sync).
        let fd = open(dirty, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let page = [UInt8](repeating: 7, count: 1 << 20)
        #expect(page.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == 1 << 20)
        close(fd)
        let file = try #require(
            (try mmapkit(["residency", "--json", dirty]).json()["files"] as? [[String: Any]])?.first
        )
        guard let dirtyPages = file["dirtyPages"] as? Int else {
            print("skipped: this kernel has no cachestat(2)")
            return
        }
        #expect(dirtyPages > 0 && dirtyPages <= 256, "\(file)")
        let evicted = try mmapkit(["evict", "--json", dirty])
        let after = try #require((try evicted.json()["files"] as? [[String: Any]])?.first)
        #expect(after["residentPagesAfter"] as? Int == 0 && after["dirtyPages"] as? Int == 0, "\(after)")
    }

    @Test func optionsFilterLikeVmtouch() throws {
        let tree = try AwkwardTree()
        // --max-file-size (-m): b (400 KiB) and sparse (64 MiB) are skipped.
        let small = try mmapkit(["residency", "--json", "-m", "300K", tree.root]).json()
        #expect((small["total"] as? [String: Any])?["files"] as? Int == 4)
        #expect((small["skippedCounts"] as? [String: Int])?["tooLarge"] == 2)
        // --exclude (-i) and --include (-I) match the last name component, with vmtouch's letters.
        let included = try mmapkit(["residency", "--json", "-I", "[bc]", tree.root]).total()
        #expect(included["files"] == 2 && included["residentPages"] == 100)
        let excluded = try mmapkit(["residency", "--json", "-i", "sub", "-i", "sparse", tree.root]).total()
        #expect(excluded["files"] == 3 && excluded["directories"] == 3)
        if haveVmtouch {
            for (ours, options) in [(included, ["-I", "[bc]"]), (excluded, ["-i", "sub", "-i", "sparse"])] {
                let theirs = try vmtouchSummary(options + [tree.root])
                #expect(Int(ours["files"] ?? -1) == theirs.files, "\(options)")
                #expect(Int(ours["residentPages"] ?? -1) == theirs.resident && Int(ours["pages"] ?? -1) == theirs.pages)
            }
            // vmtouch -m counts the skipped files among Files, but not their pages.
            let theirs = try vmtouchSummary(["-m", "300K", tree.root])
            let ours = try #require(small["total"] as? [String: Any])
            #expect(ours["pages"] as? Int == theirs.pages && ours["residentPages"] as? Int == theirs.resident)
        }
        // --summary-only (-s) prints only the summary.
        let summary = try mmapkit(["residency", "-s", tree.root])
        #expect(!summary.stdout.contains("/sub/b") && summary.stdout.contains("Files: 6"))
        // A directory is walked without -r.
        #expect(try mmapkit(["residency", "--json", tree.scratch.at("nested")]).total()["files"] == 1)
    }
}
