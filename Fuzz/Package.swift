// swift-tools-version:6.0
// libFuzzer target over MizuWebSocket's and MizuLive's untrusted-input paths. Its own package so the main build
// never compiles with the fuzzer sanitizer. Build and run with scripts/fuzz.sh.
import Foundation
import PackageDescription

// A path dependency's identity is its folder name, whatever the clone is called.
let mainPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "MizuFuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .executableTarget(
            name: "MizuFuzz",
            dependencies: [
                .product(name: "MizuLive", package: mainPackage),
                .product(name: "MizuWebSocket", package: mainPackage),
            ],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ],
    swiftLanguageModes: [.v6]
)
