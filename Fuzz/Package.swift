// swift-tools-version: 6.2
import PackageDescription

// The libFuzzer target. A package of its own: ordinary builds never compile it.
//   swift build --package-path Fuzz --sanitize=fuzzer --sanitize=address   (or: make fuzz)
let package = Package(
    name: "MmapKitFuzz",
    dependencies: [.package(name: "MmapKit", path: "..")],
    targets: [
        .executableTarget(
            name: "MmapKitFuzz",
            dependencies: [.product(name: "MmapKit", package: "MmapKit")],
            swiftSettings: [.enableExperimentalFeature("Lifetimes"), .strictMemorySafety()]
        )
    ]
)
