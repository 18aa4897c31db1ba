import Foundation
import Mizu
import MizuTestSupport
import NIOCore
import Testing

/// Go mizu's request and response helpers and its request-ID and CORS middleware.
@Suite(.timeLimit(.minutes(10))) struct RouterHelpersTests {
    @Test func formsHeadersIfAbsentAndTheClientAddress() async throws {
        let app = App(logsRequests: false)
        app.post("/form") { c in
            let form = c.form()
            try await c.text(.ok, "\(form["name"] ?? "-") \(form.values("tag")) \(c.clientAddress?.ipAddress ?? "?")")
        }
        app.get("/headers") { c in
            c.writer.setHeader("cache-control", "no-store")
            c.setHeaderIfAbsent("cache-control", "max-age=60")
            c.setHeaderIfAbsent("x-frame-options", "DENY")
            try await c.text(.ok, "ok")
        }
        try await withServer(app) { (port: Int) async throws in
            let form = try await request(
                port: port, "POST", "/form", headers: ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"],
                body: "name=J%C3%BCrgen+K&tag=a&tag=b")
            #expect(form.text == #"Jürgen K ["a", "b"] 127.0.0.1"#)
            let json = try await request(port: port, "POST", "/form", headers: ["Content-Type": "application/json"], body: "name=x")
            #expect(json.text.hasPrefix("- []"), "another content type is no form")
            let headers = try await request(port: port, "GET", "/headers")
            #expect(headers.header("cache-control") == "no-store" && headers.header("x-frame-options") == "DENY")
        }
    }

    @Test func middlewareHandsValuesDownToTheHandler() async throws {
        let user = RequestValueKey<String>("user")
        let app = App(logsRequests: false)
        app.use { next in { c in c.values[user] = "ann"; try await next(c) } }
        app.get("/me/{id}") { c in try await c.text(.ok, "\(c.values[user] ?? "nobody") \(c.param("id"))") }
        try await withServer(app) { (port: Int) async throws in
            #expect(try await request(port: port, "GET", "/me/7").text == "ann 7", "the routed context shares the values")
        }
    }

    @Test func requestIDsAreKeptWhenSaneMadeOtherwiseAndLogged() async throws {
        let log = CapturedLog()
        let app = App(logger: log.logger)
        app.use(Middlewares.requestID())
        app.get("/id") { c in try await c.text(.ok, c.values[.requestID] ?? "none") }
        try await withServer(app) { (port: Int) async throws in
            let kept = try await request(port: port, "GET", "/id", headers: ["X-Request-ID": "trace-42"])
            #expect(kept.text == "trace-42" && kept.header("x-request-id") == "trace-42")
            for bad in ["has space", String(repeating: "x", count: 129)] {
                let made = try await request(port: port, "GET", "/id", headers: ["X-Request-ID": bad])
                #expect(made.text.count == 32 && made.text.allSatisfy(\.isHexDigit) && made.header("x-request-id") == made.text)
            }
        }
        #expect(log.all.contains { $0.metadata["request_id"] == "trace-42" })
    }

    @Test func corsAnswersPreflightsAndMarksAllowedOriginsOnly() async throws {
        var options = CORSOptions(allowedOrigins: ["https://app.example.com"])
        options.allowCredentials = true
        let app = App(logsRequests: false)
        app.use(Middlewares.cors(options))
        app.get("/data") { c in try await c.text(.ok, "data") }
        try await withServer(app) { (port: Int) async throws in
            let preflight = try await request(
                port: port, "OPTIONS", "/data",
                headers: ["Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT"])
            #expect(preflight.status == 204)
            #expect(preflight.header("access-control-allow-origin") == "https://app.example.com")
            #expect(preflight.header("access-control-allow-methods")?.contains("PUT") == true)
            #expect(preflight.header("access-control-allow-credentials") == "true")
            #expect(preflight.header("access-control-max-age") == "600")

            let simple = try await request(port: port, "GET", "/data", headers: ["Origin": "https://app.example.com"])
            #expect(simple.text == "data" && simple.header("access-control-allow-origin") == "https://app.example.com")
            #expect(simple.header("vary") == "Origin")

            let stranger = try await request(
                port: port, "OPTIONS", "/data", headers: ["Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"])
            #expect(stranger.status == 405, "not a preflight we answer: the router's own answer")
            #expect(stranger.header("access-control-allow-origin") == nil)
            let noOrigin = try await request(port: port, "GET", "/data")
            #expect(noOrigin.header("access-control-allow-origin") == nil && noOrigin.header("vary") == "Origin")
        }
        let any = App(logsRequests: false)
        any.use(Middlewares.cors(CORSOptions(allowedOrigins: ["*"])))
        any.get("/data") { c in try await c.text(.ok, "data") }
        try await withServer(any) { (port: Int) async throws in
            let simple = try await request(port: port, "GET", "/data", headers: ["Origin": "https://anyone.example"])
            #expect(simple.header("access-control-allow-origin") == "*")
        }
    }
}

@Suite(.timeLimit(.minutes(10))) struct FileAnswerTests {
    @Test func fileAndDownloadStreamAFileWithItsHeaders() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mizu-files-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let report = directory.appendingPathComponent("report.txt").path
        try "quarterly".write(toFile: report, atomically: true, encoding: .utf8)
        let app = App(logsRequests: false)
        app.get("/view") { c in try await c.file(report) }
        app.get("/save") { c in try await c.download(report, as: "report.txt") }
        app.get("/save-fancy") { c in try await c.download(report, as: "résumé \"v2\".txt") }
        app.get("/missing") { c in try await c.file(directory.appendingPathComponent("nope").path) }
        app.get("/folder") { c in try await c.file(directory.path) }
        try await withServer(app) { (port: Int) async throws in
            let view = try await request(port: port, "GET", "/view")
            #expect(view.status == 200 && view.text == "quarterly" && view.header("content-type") == "text/plain; charset=utf-8")
            #expect(view.header("content-disposition") == nil && view.header("etag") != nil)
            let part = try await request(port: port, "GET", "/view", headers: ["Range": "bytes=0-6"])
            #expect(part.status == 206 && part.text == "quarter")
            let save = try await request(port: port, "GET", "/save")
            #expect(save.header("content-disposition") == #"attachment; filename="report.txt""#)
            let fancy = try await request(port: port, "GET", "/save-fancy")
            #expect(fancy.header("content-disposition") == #"attachment; filename="r_sum_ _v2_.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22v2%22.txt"#)
            #expect(try await request(port: port, "GET", "/missing").status == 404)
            #expect(try await request(port: port, "GET", "/folder").status == 404)
        }
    }

    @Test func aRouteCanTakeLessThanTheServersBodyLimit() async throws {
        let app = App(logsRequests: false)
        app.with(Middlewares.bodyLimit(8)).post("/small") { c in try await c.text(.ok, c.request.bodyString) }
        try await withServer(app) { (port: Int) async throws in
            #expect(try await request(port: port, "POST", "/small", body: "12345678").text == "12345678")
            let big = try await request(port: port, "POST", "/small", body: "123456789")
            #expect(big.status == 413 && big.text == "request body exceeds 8 bytes\n")
        }
    }
}

@Suite(.timeLimit(.minutes(10))) struct UnixSocketTests {
    @Test func anAppServesOnAUnixDomainSocketAndReplacesOnlyAStaleSocket() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mizu-\(UUID().uuidString.prefix(8)).sock").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        for round in 0..<2 {  // the second start finds the first one's socket file and replaces it
            let app = App(logsRequests: false)
            app.get("/hi") { c in try await c.text(.ok, "hi \(round)") }
            try await app.start(unixSocketPath: path)
            do {
                let client = try await RawClient.connect(unixSocketPath: path)
                try await client.send("GET /hi HTTP/1.1\r\nHost: local\r\n\r\n")
                let response = try await client.readResponse()
                #expect(response.status == 200 && response.text == "hi \(round)")
                await client.close()
            } catch {
                await app.shutdown()
                throw error
            }
            await app.shutdown()
        }
        // A regular file there is not ours to delete: starting fails instead.
        let file = path + ".txt"
        #expect(FileManager.default.createFile(atPath: file, contents: Data("keep me".utf8)))
        defer { try? FileManager.default.removeItem(atPath: file) }
        await #expect(throws: (any Error).self) { try await App(logsRequests: false).start(unixSocketPath: file) }
        #expect(FileManager.default.contents(atPath: file) == Data("keep me".utf8))
    }
}

@Suite(.timeLimit(.minutes(10))) struct JSONAnswerTests {
    struct Event: Encodable {
        let eventName: String
        let at: Date
        let url: String
    }

    @Test func theDefaultIsStableAndAnEncoderCanBeGiven() async throws {
        let app = App(logsRequests: false)
        let event = Event(eventName: "deploy", at: Date(timeIntervalSince1970: 0), url: "https://x/y")
        app.get("/default") { c in try await c.json(.ok, event) }
        app.get("/custom") { c in
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.sortedKeys]
            try await c.json(.created, event, encoder: encoder)
        }
        try await withServer(app) { (port: Int) async throws in
            let plain = try await request(port: port, "GET", "/default")
            #expect(plain.text == #"{"at":-978307200,"eventName":"deploy","url":"https://x/y"}"#)
            #expect(plain.header("content-type") == "application/json; charset=utf-8")
            let custom = try await request(port: port, "GET", "/custom")
            #expect(custom.status == 201 && custom.text == #"{"at":"1970-01-01T00:00:00Z","event_name":"deploy","url":"https:\/\/x\/y"}"#)
        }
    }
}
