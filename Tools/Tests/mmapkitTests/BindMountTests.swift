import Foundation
import Glibc
import Testing

/// A walk remembers only what can be met twice (the roots of bind mounts, read from
/// /proc/self/mountinfo, and files with several links), not every file and directory: these
/// check that a bind mount inside the tree is still counted once, whether the walk meets the
/// mount or its source first (names sort both ways), for a directory, a directory below a
/// mounted one, and a file. Root only: each test prints why it is skipped otherwise.
@Suite(.serialized) struct BindMountTests {
    /// Bind-mounts `source` on `target` (both in `scratch`); false, with a message, if it fails.
    private func bind(_ scratch: Scratch, _ source: String, on target: String) throws -> Bool {
        guard getuid() == 0 else {
            print("skipped: bind mounts need root")
            return false
        }
        let argv = ["/usr/bin/mount", "--bind", scratch.at(source), scratch.at(target)]
        let mounted = try run(argv.map { Array($0.utf8) })
        if mounted.status != 0 { print("skipped: mount --bind \(source) \(target) failed here: \(mounted.stderr)") }
        return mounted.status == 0
    }

    private func unmount(_ scratch: Scratch, _ target: String) {
        _ = try? run(["/usr/bin/umount", scratch.at(target)].map { Array($0.utf8) })
    }

    /// `a-view` (met before its source) and `z-view` (after) show `m-src`; `b-sub` shows
    /// `m-src/sub`, so `a-view/sub` and `z-view/sub` are it too. Each file is counted once.
    @Test(arguments: [[String](), ["--count-hard-links"], ["-s"]])
    func directoryBindMountsAreCountedOnceWhicheverNameComesFirst(options: [String]) throws {
        let scratch = try Scratch()
        for name in ["a-view", "b-sub", "m-src", "m-src/sub", "z-view"] {
            try FileManager.default.createDirectory(atPath: scratch.at(name), withIntermediateDirectories: false)
        }
        try scratch.write("m-src/f", pages: 3)
        try scratch.write("m-src/sub/g", pages: 2)
        guard try bind(scratch, "m-src", on: "a-view") else { return }
        defer { unmount(scratch, "a-view") }
        guard try bind(scratch, "m-src", on: "z-view") else { return }
        defer { unmount(scratch, "z-view") }
        guard try bind(scratch, "m-src/sub", on: "b-sub") else { return }
        defer { unmount(scratch, "b-sub") }
        let result = try mmapkit(["residency", "--json"] + options + [scratch.path])
        #expect(result.status == 0, "\(result.stderr)")
        let total = try result.total()
        #expect(total["files"] == 3 && total["pages"] == 4096 + 3 + 2, "data, f, g once each: \(total)")
        #expect(total["directories"] == 3 && total["foldedNames"] == 3, "the root, m-src, sub; 3 views: \(total)")
        if haveVmtouch {
            let theirs = try vmtouchSummary([scratch.path])
            #expect(theirs.files == 3 && theirs.pages == 4096 + 3 + 2, "vmtouch agrees: \(theirs)")
        }
    }

    /// A file with one link bind-mounted on `a-view` (met before it) and on `z-view` (after).
    @Test func aFileBindMountIsCountedOnceWhicheverNameComesFirst() throws {
        let scratch = try Scratch()
        try scratch.write("m-single", pages: 3)
        try scratch.write("a-view", pages: 0)
        try scratch.write("z-view", pages: 0)
        guard try bind(scratch, "m-single", on: "a-view") else { return }
        defer { unmount(scratch, "a-view") }
        guard try bind(scratch, "m-single", on: "z-view") else { return }
        defer { unmount(scratch, "z-view") }
        let total = try mmapkit(["residency", "--json", scratch.path]).total()
        #expect(total["files"] == 2 && total["pages"] == 4096 + 3, "data and m-single once: \(total)")
        #expect(total["foldedNames"] == 2, "a-view and z-view: \(total)")
        // A directory bind mount above a file mount: still once.
        try FileManager.default.createDirectory(atPath: scratch.at("dir"), withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: scratch.at("dir-view"), withIntermediateDirectories: false)
        try scratch.write("dir/h", pages: 5)
        guard try bind(scratch, "dir", on: "dir-view") else { return }
        defer { unmount(scratch, "dir-view") }
        let again = try mmapkit(["residency", "--json", scratch.path]).total()
        #expect(again["files"] == 3 && again["pages"] == 4096 + 3 + 5, "data, m-single, dir/h once: \(again)")
    }

    /// Two operands that overlap (a file inside a directory operand, either order) count it once.
    @Test func overlappingOperandsCountAFileOnce() throws {
        let scratch = try Scratch()
        try FileManager.default.createDirectory(atPath: scratch.at("d"), withIntermediateDirectories: false)
        try scratch.write("d/f", pages: 7)
        for operands in [[scratch.path, scratch.at("d/f")], [scratch.at("d/f"), scratch.path]] {
            let total = try mmapkit(["residency", "--json"] + operands).total()
            #expect(total["files"] == 2 && total["pages"] == 4096 + 7 && total["foldedNames"] == 1, "\(total)")
        }
    }
}
