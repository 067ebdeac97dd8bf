// swift-tools-version: 6.2
import PackageDescription

// Depends on MmapKit with the SystemInterop trait, the way a user's package would; by path here,
// by URL elsewhere:
//   .package(url: "https://github.com/your-org/MmapKit.git", from: "0.1.0", traits: ["SystemInterop"])
// The trait brings swift-system with it: SystemPackage is named here only to import it.
let package = Package(
    name: "SystemInteropConsumer",
    dependencies: [
        .package(name: "MmapKit", path: "../..", traits: ["SystemInterop"]),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
    ],
    targets: [
        .executableTarget(
            name: "SystemInteropConsumer",
            dependencies: [
                .product(name: "MmapKit", package: "MmapKit"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        )
    ]
)
