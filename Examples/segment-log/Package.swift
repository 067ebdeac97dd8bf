// swift-tools-version: 6.2
import Foundation
import PackageDescription

// A storage engine's first piece built on MmapKit: a durable, crash-safe, append-only log that
// other processes follow. MmapKit comes by path, as a user's package would name it by URL.
let package = Package(
    name: "SegmentLog",
    products: [
        .library(name: "SegmentLog", targets: ["SegmentLog"]),
        .executable(name: "segment-log", targets: ["segment-log"]),
        .executable(name: "segment-log-bench", targets: ["segment-log-bench"]),
    ],
    dependencies: [
        .package(name: "MmapKit", path: "../..")
    ],
    targets: [
        .target(
            name: "SegmentLog",
            dependencies: [.product(name: "MmapKit", package: "MmapKit")]
        ),
        // The command-line tool: append, dump, follow (the reader in another process), and the
        // crash test's parent and child.
        .executableTarget(
            name: "segment-log",
            dependencies: ["SegmentLog"]
        ),
        // Debian's SQLite (libsqlite3-dev), found through pkg-config: nothing to resolve or build.
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .executableTarget(
            name: "segment-log-bench",
            dependencies: ["SegmentLog", "CSQLite"]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// The tests, when they are there: a copy of Package.swift and Sources alone (the log without its
// tests) must still build, and SwiftPM refuses a test target whose directory is missing.
if FileManager.default.fileExists(atPath: Context.packageDirectory + "/Tests/SegmentLogTests") {
    package.targets.append(
        .testTarget(
            name: "SegmentLogTests",
            // The tests run the tool as a child process (the crash test, the follower).
            dependencies: ["SegmentLog", "segment-log"]
        )
    )
}
