// swift-tools-version:6.0
// libFuzzer target over the untrusted-input paths of Mizu (HTTP header and body parsers), MizuWebSocket
// and MizuLive. Its own package so the main build never compiles with the fuzzer sanitizer. Build and run
// with scripts/fuzz.sh.
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
                .product(name: "Mizu", package: mainPackage),
                .product(name: "MizuLive", package: mainPackage),
                .product(name: "MizuLiveClient", package: mainPackage),
                .product(name: "MizuWebSocket", package: mainPackage),
            ],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ],
    swiftLanguageModes: [.v6]
)
