// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "hotplug-agent",
    platforms: [.macOS(.v13)],
    products: [
        // The daemon and the commands admins run; it holds no simulator and no benchmarks.
        .executable(name: "hotplug-agent", targets: ["HotplugAgentMain"]),
        // The same commands with the simulated kernel and the benchmarks behind `simulate`,
        // `bench` and `--host`; hotplug-agent hands those command lines to it.
        .executable(name: "hotplug-agent-lab", targets: ["HotplugAgentLab"]),
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
        // What the agent and the simulated kernel share: the `KernelIO` seam, its failures,
        // paths, events and host descriptions.
        .target(name: "HostInterface", dependencies: ["CLinux", "Policy"]),
        // The daemon: events, sysfs access, the executor, the reconciler.
        .target(
            name: "HotplugAgent",
            dependencies: [
                "CUdev",
                "CLinux",
                "Policy",
                "HostInterface",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The commands admins run, and their reports; each executable picks its laboratory.
        .target(
            name: "AgentCommands",
            dependencies: [
                "HotplugAgent",
                "HostInterface",
                "Policy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The simulated kernel: the lab's and the tests', never the daemon's.
        .target(name: "Simulation", dependencies: ["HostInterface", "Policy"]),
        .executableTarget(name: "HotplugAgentMain", dependencies: ["AgentCommands"]),
        .executableTarget(
            name: "HotplugAgentLab",
            dependencies: [
                "AgentCommands",
                "HotplugAgent",
                "HostInterface",
                "Simulation",
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
        .testTarget(name: "AgentTests", dependencies: ["AgentCommands", "HotplugAgent", "HostInterface", "Simulation", "Policy", "TestSupport"]),
    ]
)
