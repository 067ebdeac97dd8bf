// swift-tools-version: 6.2
import PackageDescription

// Depends on MmapKit the way a user's package would; by path here, by URL elsewhere:
//   .package(url: "https://github.com/your-org/MmapKit.git", from: "0.1.0")
let package = Package(
    name: "Consumer",
    dependencies: [
        .package(name: "MmapKit", path: "../..")
    ],
    targets: [
        .executableTarget(
            name: "Consumer",
            dependencies: [.product(name: "MmapKit", package: "MmapKit")]
        )
    ]
)
