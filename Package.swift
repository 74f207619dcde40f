// swift-tools-version:6.1
import PackageDescription

// Elementwise kernels rely on fused multiply-add and AVX2; a default x86-64 build turns every
// FMA into a libm call. The flag only applies where the host is x86-64.
let vectorISA: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=x86-64-v3"], .when(platforms: [.linux])),
]

let package = Package(
    name: "Tributary",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tributary", targets: ["TributaryCLI"]),
        .library(name: "Basics", targets: ["Basics"]),
        .library(name: "TensorCore", targets: ["TensorCore"]),
        .library(name: "ModelCore", targets: ["ModelCore"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "Wire", targets: ["Wire"]),
        .library(name: "Transport", targets: ["Transport"]),
        .library(name: "Collectives", targets: ["Collectives"]),
        .library(name: "Coordination", targets: ["Coordination"]),
        .library(name: "CoordinationServer", targets: ["CoordinationServer"]),
        .library(name: "RunTrust", targets: ["RunTrust"]),
        .library(name: "RunViews", targets: ["RunViews"]),
        .library(name: "CoordinationClient", targets: ["CoordinationClient"]),
        .library(name: "Strategies", targets: ["Strategies"]),
        .library(name: "Planner", targets: ["Planner"]),
        .library(name: "EngineLink", targets: ["EngineLink"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // Without its default traits Hummingbird leaves out swift-configuration: a shorter build.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(name: "AllocationCounter"),
        // Hashes, checksums, "did you mean" and decoding-error text: what every module uses and
        // none should link BLAS for.
        .target(name: "Basics", swiftSettings: vectorISA),
        .target(name: "TensorCore", dependencies: ["Basics", "CBLAS"], swiftSettings: vectorISA),
        .target(name: "ModelCore", dependencies: ["Basics", "TensorCore"], swiftSettings: vectorISA),
        .target(
            name: "Training",
            dependencies: [
                "Basics", "ModelCore", "TensorCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: vectorISA
        ),
        .target(
            name: "Wire",
            dependencies: ["Basics", "TensorCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: vectorISA
        ),
        // The run's certificate authority and the TLS settings built on it (coordinator API, ring links).
        .target(
            name: "RunTrust",
            dependencies: [
                .product(name: "X509", package: "swift-certificates"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .target(
            name: "Transport",
            dependencies: ["Wire", "RunTrust", .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: vectorISA
        ),
        .target(
            name: "Collectives",
            dependencies: ["Wire", "Transport", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: vectorISA
        ),
        // The coordinator's protocol (messages, membership state), its HTTP server and its client:
        // workers link the client only, not Hummingbird.
        .target(name: "Coordination", dependencies: ["Basics"]),
        // What people look at: the live dashboard page, the charts of a run, `tributary report`'s pages.
        .target(name: "RunViews", dependencies: ["Basics", "Coordination"]),
        .target(
            name: "CoordinationServer",
            dependencies: [
                "Basics", "Coordination", "RunViews", "RunTrust",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "CoordinationClient",
            dependencies: [
                "Basics", "Coordination", "RunTrust", .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "Strategies",
            dependencies: ["Basics", "Training", "ModelCore", "TensorCore", "Wire", "Transport", "Collectives", "Coordination", "CoordinationClient",
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: vectorISA
        ),
        // The way in for engines of their own (PyTorch): a local socket and a shared buffer beside `tributary worker`.
        .target(
            name: "EngineLink",
            dependencies: ["Coordination", "ModelCore", "Training", "Strategies", .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "Planner",
            dependencies: ["Basics", .product(name: "Yams", package: "Yams")],
            resources: [.copy("Resources/devices.yaml")]
        ),
        // The coordinator service with its run folder, and the `local` supervisor of worker processes.
        .target(
            name: "ClusterRuns",
            dependencies: [
                "Basics", "Training", "ModelCore", "Coordination", "CoordinationServer", "CoordinationClient", "RunViews", "RunTrust",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Benchmarks",
            dependencies: [
                "Basics", "TensorCore", "ModelCore", "Training", "Wire", "Transport", "Collectives", "Planner", "AllocationCounter",
                "Coordination", "EngineLink", .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: vectorISA
        ),
        .target(name: "Experiments", dependencies: ["Basics", "Training", "ModelCore", "Transport", "Planner", "ClusterRuns", "Benchmarks",
                                                  "Strategies", "Coordination", "CoordinationClient", "RunTrust"]),
        .executableTarget(
            name: "TributaryCLI",
            dependencies: [
                "Basics", "Training", "ModelCore", "TensorCore", "Wire", "Transport", "Collectives", "Coordination", "CoordinationServer",
                "CoordinationClient", "Strategies", "Planner", "ClusterRuns", "Benchmarks", "Experiments", "RunViews", "RunTrust",
                "EngineLink", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: vectorISA
        ),
        .target(name: "TestSupport", dependencies: ["TensorCore", "ModelCore"], swiftSettings: vectorISA),
        .testTarget(name: "BasicsTests", dependencies: ["Basics"]),
        .testTarget(name: "EngineLinkTests", dependencies: ["EngineLink", "ModelCore", "Strategies", "Training"]),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "TestSupport"], swiftSettings: vectorISA),
        .testTarget(
            name: "ModelCoreTests",
            dependencies: ["ModelCore", "TensorCore", "Training", "TestSupport"],
            resources: [.copy("Fixtures")],
            swiftSettings: vectorISA
        ),
        .testTarget(
            name: "WireTests",
            dependencies: ["Basics", "Wire", "TensorCore", "ModelCore", .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOEmbedded", package: "swift-nio")],
            swiftSettings: vectorISA
        ),
        .testTarget(
            name: "CollectivesTests",
            dependencies: ["Collectives", "Transport", "Wire", "RunTrust", "TestSupport", .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio")],
            swiftSettings: vectorISA
        ),
        .testTarget(name: "CLITests", dependencies: ["TributaryCLI", "Basics", "ModelCore", "Wire", "Training", "Coordination", "CoordinationClient", "RunTrust"]),
        .testTarget(name: "PlannerTests", dependencies: ["Planner"]),
        .testTarget(name: "RunTrustTests", dependencies: [
            "RunTrust", .product(name: "X509", package: "swift-certificates"), .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "ExperimentsTests", dependencies: ["Experiments", "ModelCore", "Coordination"]),
        .testTarget(name: "RunViewsTests", dependencies: ["RunViews", "Coordination"]),
        .testTarget(name: "CoordinationTests", dependencies: [
            "Coordination", "CoordinationServer", "CoordinationClient", "RunTrust", .product(name: "Logging", package: "swift-log"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Hummingbird", package: "hummingbird"), .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        .testTarget(name: "StrategiesTests", dependencies: ["Strategies", "Training", "ModelCore", "TensorCore", "Collectives", "Transport", "Wire",
                                                           "Coordination", "TestSupport", .product(name: "NIOPosix", package: "swift-nio")],
                    swiftSettings: vectorISA),
        .testTarget(
            name: "TrainingTests",
            dependencies: ["Training", "ModelCore", "TensorCore", "TestSupport"],
            resources: [.copy("Fixtures")],
            swiftSettings: vectorISA
        ),
    ]
)
