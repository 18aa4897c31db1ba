// swift-tools-version:6.1
// Benchmarks: the live-bench load generator, the Hummingbird peer (hb-chat) and
// package-benchmark micro-benchmarks. Its own package so the main build stays light.
import Foundation
import PackageDescription

// A path dependency's identity is its folder name, whatever the clone is called.
let mainPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "MizuBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "live-bench",
            dependencies: [
                .product(name: "MizuWebSocket", package: mainPackage),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Sources/LiveBench"
        ),
        .executableTarget(
            name: "client-bench",
            dependencies: [
                .product(name: "MizuLiveClient", package: mainPackage),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/ClientBench"
        ),
        .executableTarget(
            name: "nio-floor",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/NIOFloor"
        ),
        .executableTarget(
            name: "hb-chat",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSCompression", package: "hummingbird-websocket"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/HBChat"
        ),
        .executableTarget(
            name: "MizuMicro",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Mizu", package: mainPackage),
                .product(name: "MizuLive", package: mainPackage),
                .product(name: "MizuWebSocket", package: mainPackage),
                "MizuLiveBenchmarkSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/MizuMicro",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // In-process harnesses on the main package's SPI (`@_spi(Benchmarking)`): not a
        // product of the main package, which ships no library for benchmarks alone.
        .target(
            name: "MizuLiveBenchmarkSupport",
            dependencies: [
                .product(name: "MizuLive", package: mainPackage),
                .product(name: "MizuWebSocket", package: mainPackage),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
