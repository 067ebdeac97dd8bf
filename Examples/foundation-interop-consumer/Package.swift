// swift-tools-version: 6.2
import PackageDescription

// Depends on MmapKit with the FoundationInterop trait, the way a user's package would; by path
// here, by URL elsewhere:
//   .package(url: "https://github.com/your-org/MmapKit.git", from: "0.1.0", traits: ["FoundationInterop"])
let package = Package(
    name: "FoundationInteropConsumer",
    dependencies: [
        .package(name: "MmapKit", path: "../..", traits: ["FoundationInterop"])
    ],
    targets: [
        .executableTarget(
            name: "FoundationInteropConsumer",
            dependencies: [.product(name: "MmapKit", package: "MmapKit")]
        )
    ]
)
