// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "hotplug-agent",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "hotplug-agent", targets: ["HotplugAgent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CUdev",
            pkgConfig: "libudev",
            providers: [.apt(["libudev-dev"])]
        ),
        .systemLibrary(name: "CLinux"),
        // Pure Swift: its own TOML parser; TOMLKit is the tests' oracle only.
        .target(name: "Policy"),
        .executableTarget(
            name: "HotplugAgent",
            dependencies: [
                "CUdev",
                "CLinux",
                "Policy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        // libFuzzer target for the policy layer (`make fuzz` builds it with -sanitize=fuzzer).
        .executableTarget(name: "PolicyFuzzer", dependencies: ["Policy"], path: "Tests/Fuzz/PolicyFuzzer"),
        .testTarget(name: "PolicyTests", dependencies: ["Policy", "TestSupport", .product(name: "TOMLKit", package: "TOMLKit")],
                    exclude: ["Corpus"]),
        .testTarget(name: "AgentTests", dependencies: ["HotplugAgent", "Policy", "TestSupport"]),
    ]
)
