import Foundation
import Mizu
import MizuTestSupport
import Testing

@Suite(.timeLimit(.minutes(2))) struct StaticFilesTests {
    @Test func servesFilesAndRefusesTraversal() async throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("mizu-static-\(UUID().uuidString)")
        let publicDir = base.appendingPathComponent("public")
        try FileManager.default.createDirectory(at: publicDir.appendingPathComponent("css"), withIntermediateDirectories: true)
        try "<h1>home</h1>".write(to: publicDir.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        try "body{}".write(to: publicDir.appendingPathComponent("css/site.css"), atomically: true, encoding: .utf8)
        try "secret".write(to: base.appendingPathComponent("secret.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(
            at: publicDir.appendingPathComponent("escape.txt"), withDestinationURL: base.appendingPathComponent("secret.txt"))
        defer { try? FileManager.default.removeItem(at: base) }

        let app = App()
        app.staticFiles("/static", directory: publicDir.path)
        try await withServer(app) { (port: Int) async throws in
            let css = try await request(port: port, "GET", "/static/css/site.css")
            #expect(css.status == 200)
            #expect(css.text == "body{}")
            #expect(css.header("content-type") == "text/css; charset=utf-8")
            let index = try await request(port: port, "GET", "/static/")
            #expect(index.text == "<h1>home</h1>")
            #expect(index.header("content-type") == "text/html; charset=utf-8")
            #expect(try await request(port: port, "GET", "/static/missing.txt").status == 404)
            for attempt in [
                "/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/..%2fsecret.txt",
                "/static/css/..%2F..%2Fsecret.txt", "/static/%2E%2E%5Csecret.txt", "/static/escape.txt",
                "/static/css/%00", "/static/%zz",
            ] {
                let response = try await request(port: port, "GET", attempt)
                #expect(response.status == 404 || response.status == 400, "\(attempt)")
                #expect(!response.text.contains("secret") || response.status != 200, "\(attempt)")
                #expect(response.text != "secret", "\(attempt)")
            }
        }
    }

    @Test func largeFilesStreamWithTheirLength() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mizu-static-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let bytes = (0..<(1 << 20) + 123).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Data(bytes).write(to: directory.appendingPathComponent("big.bin"))
        let app = App()
        app.staticFiles("/files", directory: directory.path)
        try await withServer(app) { (port: Int) async throws in
            let response = try await request(port: port, "GET", "/files/big.bin")
            #expect(response.status == 200)
            #expect(response.header("content-length") == String(bytes.count))
            #expect(response.header("transfer-encoding") == nil)
            #expect(response.body == bytes)
            let head = try await request(port: port, "HEAD", "/files/big.bin")
            #expect(head.header("content-length") == String(bytes.count))
            #expect(head.body.isEmpty)
        }
    }
}
