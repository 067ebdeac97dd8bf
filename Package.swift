// swift-tools-version: 6.2
import PackageDescription

/// Settings shared by every Swift target of the package.
let swiftSettings: [SwiftSetting] = [
    // Span-returning properties (`bytes`, `mutableBytes`) need `@_lifetime` annotations.
    .enableExperimentalFeature("Lifetimes"),
    // Every unsafe expression is marked `unsafe`; pointer-holding types state their invariant.
    .strictMemorySafety(),
]

// MARK: - Interop traits
// Both are off by default: a package that enables neither resolves, fetches and builds nothing
// but MmapKit (the swift-system dependency is trait-guarded, so SwiftPM prunes it).

/// `FileDescriptor` and `FilePath` (swift-system) wherever a descriptor or a path is taken.
let systemInterop = "SystemInterop"
/// `Data(mapping:)` over a mapping without a copy, and `FileHandle` wherever a descriptor is taken.
let foundationInterop = "FoundationInterop"
let systemPackage = Target.Dependency.product(
    name: "SystemPackage",
    package: "swift-system",
    condition: .when(traits: [systemInterop])
)

let package = Package(
    name: "MmapKit",
    products: [
        .library(name: "MmapKit", targets: ["MmapKit"])
    ],
    traits: [
        .trait(
            name: systemInterop,
            description: "swift-system interop: FileDescriptor and FilePath wherever a descriptor or a path is taken."
        ),
        .trait(
            name: foundationInterop,
            description: "Foundation interop: Data(mapping:) without a copy, FileHandle wherever a descriptor is taken."
        ),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1")
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
            dependencies: ["CMmapShim", systemPackage],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MmapKitTests",
            dependencies: ["MmapKit", "CMmapShim", systemPackage],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
