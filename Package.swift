// swift-tools-version: 6.2
import PackageDescription

/// Settings shared by every Swift target of the package.
let swiftSettings: [SwiftSetting] = [
    // Span-returning properties (`bytes`, `mutableBytes`) need `@_lifetime` annotations.
    .enableExperimentalFeature("Lifetimes"),
    // Every unsafe expression is marked `unsafe`; pointer-holding types state their invariant.
    .strictMemorySafety(),
]

let package = Package(
    name: "MmapKit",
    products: [
        .library(name: "MmapKit", targets: ["MmapKit"])
    ],
    targets: [
        .target(
            name: "CMmapShim",
            cSettings: [
                // mremap, MREMAP_MAYMOVE, memfd_create, fallocate and strerrorname_np are GNU extensions.
                .define("_GNU_SOURCE"),
                // The fault-injection seam of the syscall wrappers: debug (testing) builds only,
                // so release builds make every call without the check.
                .define("MMAPKIT_FAULT_INJECTION", .when(configuration: .debug)),
            ]
        ),
        .target(
            name: "MmapKit",
            dependencies: ["CMmapShim"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MmapKitTests",
            dependencies: ["MmapKit", "CMmapShim"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
