// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Mizu",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "MizuHTTP", targets: ["MizuHTTP"]),
        .library(name: "Mizu", targets: ["Mizu"]),
        .library(name: "MizuCompat", targets: ["MizuCompat"]),
        .library(name: "MizuWebSocket", targets: ["MizuWebSocket"]),
        .library(name: "MizuLive", targets: ["MizuLive"]),
        .library(name: "MizuLiveClient", targets: ["MizuLiveClient"]),
        .executable(name: "ChatApp", targets: ["ChatApp"]),
        .executable(name: "EchoServer", targets: ["EchoServer"]),
        .executable(name: "EchoClient", targets: ["EchoClient"]),
        .executable(name: "ChatClient", targets: ["ChatClient"]),
        .executable(name: "HelloServer", targets: ["HelloServer"]),
    ],
    // TLS (https://, wss://) links BoringSSL through swift-nio-ssl: opt in with
    // `swift build --traits TLS`, so builds that terminate TLS at a proxy do not pay for it.
    traits: [
        .trait(name: "TLS", description: "Serve https:// and wss:// (swift-nio-ssl)."),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        .systemLibrary(
            name: "CZlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // The HTTP engine: server, connections, requests and responses. No router.
        .target(
            name: "MizuHTTP",
            dependencies: [
                "CZlib",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["TLS"])),
                .product(name: "NIOTLS", package: "swift-nio", condition: .when(traits: ["TLS"])),
            ],
            swiftSettings: swiftSettings
        ),
        // The router, middleware and Ctx on top of the engine (which it re-exports).
        .target(
            name: "Mizu",
            dependencies: [
                "MizuHTTP",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                // For the request parser's differential check against NIO's (SPI, fuzzing and tests).
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["TLS"])),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MizuCompat",
            dependencies: ["Mizu"],
            swiftSettings: swiftSettings
        ),
        // The WebSocket protocol (RFC 6455, RFC 7692): knows connections and frames, no topics.
        .target(
            name: "MizuWebSocket",
            dependencies: [
                "MizuHTTP", "CZlib",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["TLS"])),
            ],
            swiftSettings: swiftSettings
        ),
        // Sessions, topics and the Redis backplane on top of MizuWebSocket (the seed's `live`).
        .target(
            name: "MizuLive",
            dependencies: [
                "MizuHTTP", "MizuWebSocket",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["TLS"])),
            ],
            swiftSettings: swiftSettings
        ),
        // The Swift client of MizuLive's protocol: reconnect, recovery, requests with answers.
        .target(
            name: "MizuLiveClient",
            dependencies: [
                "MizuHTTP", "MizuWebSocket",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["TLS"])),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ChatApp",
            dependencies: [
                "Mizu", "MizuCompat", "MizuLive",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/ChatApp",
            resources: [.copy("Public")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "EchoServer",
            dependencies: [
                "Mizu", "MizuWebSocket",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/EchoServer",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "EchoClient",
            dependencies: [
                "MizuWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/EchoClient",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ChatClient",
            dependencies: [
                "MizuLiveClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/ChatClient",
            swiftSettings: swiftSettings
        ),
        // The allocation guard (release; scripts/test.sh runs it): counts the publish path's
        // allocations with a malloc counter of its own (inert under sanitizers).
        .target(name: "CAllocationCounter", path: "Tests/AllocationCounter"),
        .executableTarget(
            name: "AllocationGuard",
            dependencies: [
                "CAllocationCounter", "Mizu", "MizuCompat", "MizuHTTP", "MizuLive", "MizuWebSocket", "MizuTestSupport",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/AllocationGuard",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MizuTestSupport",
            dependencies: [
                "Mizu", "MizuHTTP", "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["TLS"])),
            ],
            path: "Tests/Support",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "HelloServer",
            dependencies: ["Mizu", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/HelloServer",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MizuLiveClientTests",
            dependencies: [
                "MizuLiveClient", "Mizu", "MizuCompat", "MizuLive", "MizuWebSocket", "MizuTestSupport",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["TLS"])),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MizuTests",
            dependencies: [
                "Mizu", "MizuHTTP", "MizuTestSupport", .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["TLS"])),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "MizuCompatTests", dependencies: ["Mizu", "MizuCompat", "MizuTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "MizuWebSocketTests",
            dependencies: [
                "Mizu", "MizuCompat", "MizuWebSocket", "MizuTestSupport",
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MizuLiveTests",
            dependencies: [
                "Mizu", "MizuCompat", "MizuWebSocket", "MizuLive", "MizuTestSupport",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["TLS"])),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
