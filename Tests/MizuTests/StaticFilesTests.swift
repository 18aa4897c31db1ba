import Foundation
import Mizu
import MizuTestSupport
import Testing

@Suite(.timeLimit(.minutes(10))) struct StaticFilesTests {
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

    @Test func conditionalRequestsAnswer304UntilTheFileChanges() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mizu-static-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("app.js")
        try "let a = 1".write(to: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_700_000_000)], ofItemAtPath: file.path)
        let app = App(logsRequests: false)
        app.staticFiles("/", directory: directory.path)
        try await withServer(app) { (port: Int) async throws in
            let first = try await request(port: port, "GET", "/app.js")
            let etag = try #require(first.header("etag"))
            #expect(first.header("last-modified") == "Tue, 14 Nov 2023 22:13:20 GMT")
            #expect(first.header("accept-ranges") == "bytes")
            let cached = try await request(port: port, "GET", "/app.js", headers: ["If-None-Match": etag])
            #expect(cached.status == 304 && cached.text.isEmpty && cached.header("etag") == etag)
            let byDate = try await request(port: port, "GET", "/app.js", headers: ["If-Modified-Since": "Tue, 14 Nov 2023 22:13:20 GMT"])
            #expect(byDate.status == 304)
            let older = try await request(port: port, "GET", "/app.js", headers: ["If-Modified-Since": "Tue, 14 Nov 2023 22:13:19 GMT"])
            #expect(older.status == 200)
            // A change (another size and time): the old validator no longer matches.
            try "let a = 22".write(to: file, atomically: true, encoding: .utf8)
            let changed = try await request(port: port, "GET", "/app.js", headers: ["If-None-Match": etag])
            #expect(changed.status == 200 && changed.text == "let a = 22" && changed.header("etag") != etag)
        }
    }

    @Test func rangesAre206AndPastTheEndIs416() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mizu-static-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "0123456789".write(to: directory.appendingPathComponent("digits.txt"), atomically: true, encoding: .utf8)
        let big = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try Data(big).write(to: directory.appendingPathComponent("big.bin"))
        let app = App(logsRequests: false)
        app.staticFiles("/", directory: directory.path)
        try await withServer(app) { (port: Int) async throws in
            let cases: [(String, Int, String, String?)] = [
                ("bytes=2-4", 206, "234", "bytes 2-4/10"),
                ("bytes=7-", 206, "789", "bytes 7-9/10"),
                ("bytes=-3", 206, "789", "bytes 7-9/10"),
                ("bytes=5-100", 206, "56789", "bytes 5-9/10"),
                ("bytes=0-", 200, "0123456789", nil),
                ("bytes=1-2,4-5", 200, "0123456789", nil),  // several ranges: the whole file
                ("items=1-2", 200, "0123456789", nil),
            ]
            for (range, status, body, contentRange) in cases {
                let response = try await request(port: port, "GET", "/digits.txt", headers: ["Range": range])
                #expect(response.status == status && response.text == body, "\(range)")
                #expect(response.header("content-range") == contentRange, "\(range)")
            }
            let past = try await request(port: port, "GET", "/digits.txt", headers: ["Range": "bytes=10-"])
            #expect(past.status == 416 && past.header("content-range") == "bytes */10" && past.text.isEmpty)
            // A range of a file larger than one read chunk streams just that part.
            let middle = try await request(port: port, "GET", "/big.bin", headers: ["Range": "bytes=65530-131080"])
            #expect(middle.status == 206 && middle.body == Array(big[65530...131080]))
            #expect(middle.header("content-length") == String(131080 - 65530 + 1))
        }
    }

    @Test func aRangeWithAnIfRangeThatNoLongerMatchesGetsTheWholeFile() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mizu-static-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "0123456789".write(to: directory.appendingPathComponent("digits.txt"), atomically: true, encoding: .utf8)
        let app = App(logsRequests: false)
        app.staticFiles("/", directory: directory.path)
        try await withServer(app) { (port: Int) async throws in
            let plain = try await request(port: port, "GET", "/digits.txt")
            let lastModified = try #require(plain.header("last-modified"))
            let etag = try #require(plain.header("etag"))
            // RFC 9110 section 13.1.5: the exact date still matches; a weak tag never does (a weak
            // validator cannot promise the bytes are the same), nor does another date or garbage.
            let cases: [(String, Int)] = [
                (lastModified, 206), (etag, 200), ("\"nope\"", 200), ("Mon, 01 Jan 1990 00:00:00 GMT", 200), ("garbage", 200), ("\"", 200),
            ]
            for (condition, status) in cases {
                let response = try await request(port: port, "GET", "/digits.txt", headers: ["Range": "bytes=0-1", "If-Range": condition])
                #expect(response.status == status, "If-Range: \(condition)")
                #expect(response.text == (status == 206 ? "01" : "0123456789"), "If-Range: \(condition)")
            }
        }
    }
}
