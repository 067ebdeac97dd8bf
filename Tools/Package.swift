// swift-tools-version: 6.2
import PackageDescription

// The `mmapkit` command-line tool and the benchmarks. A package of its own, depending on the
// library by path, so that users of the library never resolve or build these dependencies.
let package = Package(
    name: "MmapKitTools",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mmapkit", targets: ["mmapkit"]),
        .executable(name: "mmapkit-cli", targets: ["mmapkit-cli"]),
        .executable(name: "mmapkit-bench", targets: ["mmapkit-bench"]),
    ],
    dependencies: [
        .package(name: "MmapKit", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // `mmapkit`: parses valid page-cache command lines itself and runs them. It links neither
        // ArgumentParser nor Foundation, and is linked statically (Swift runtime and glibc), so
        // that it starts about as fast and small as vmtouch: no shared library to load and
        // relocate. The linker warns that libswiftCore.a refers to dlopen (for a prespecialized
        // metadata library that Linux builds do not use). No target may depend on this one: the
        // flag would reach the test bundle, which must link dynamically (`swift test` builds
        // every product, so the tests still find mmapkit beside them). Top-level code is
        // main-actor isolated, and its dynamic isolation check refers to `MainActor.shared`, which
        // links Swift's concurrency runtime and libdispatch, whose initialiser runs before `main`
        // (reads /sys/devices/system/cpu/possible twice, asks for the CPU affinity): the tool has
        // no actor, no task and one thread, so the check is turned off and neither is linked.
        .executableTarget(
            name: "mmapkit",
            dependencies: ["PageCache"],
            swiftSettings: [.unsafeFlags(["-disable-dynamic-actor-isolation"])],
            linkerSettings: [.unsafeFlags(["-static-executable"])]
        ),
        // The same commands defined with ArgumentParser: help, version and usage errors, and the
        // lines `mmapkit` leaves alone, which it runs through `exec`.
        .executableTarget(
            name: "mmapkit-cli",
            dependencies: [
                "PageCache",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The page-cache commands' work (walk, measure, report), shared by both.
        .target(
            name: "PageCache",
            dependencies: [
                .product(name: "MmapKit", package: "MmapKit"),
                "CPageCache",
            ]
        ),
        // `mmapkit bench`, run by `mmapkit` as a separate executable: it links Foundation (one of
        // the implementations it measures), which the page-cache commands must not pay for.
        .executableTarget(
            name: "mmapkit-bench",
            dependencies: [
                .product(name: "MmapKit", package: "MmapKit"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // cachestat(2), openat(2) and the _GNU_SOURCE flags, which Swift cannot reach directly.
        .target(name: "CPageCache", cSettings: [.define("_GNU_SOURCE")]),
        .testTarget(
            name: "mmapkitTests",
            dependencies: ["mmapkit-cli", "mmapkit-bench"]
        ),
        .executableTarget(
            name: "MmapKitBenchmarks",
            dependencies: [
                .product(name: "MmapKit", package: "MmapKit"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/MmapKitBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
