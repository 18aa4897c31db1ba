import Mizu
import MizuTestSupport
import NIOCore
import Testing

/// Go mizu's request and response helpers and its request-ID and CORS middleware.
@Suite(.timeLimit(.minutes(2))) struct RouterHelpersTests {
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
