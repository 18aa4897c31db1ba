import Mizu
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOHTTP1
import Testing

@Suite(.timeLimit(.minutes(10))) struct RouterTests {
    private func routingApp() -> App {
        let app = App()
        app.get("/users/{id}") { c in try await c.text(.ok, "user \(c.param("id"))") }
        app.get("/users/me") { c in try await c.text(.ok, "me") }
        app.get("/users/{id}/posts/{post}") { c in try await c.text(.ok, "\(c.param("id"))/\(c.param("post"))") }
        app.get("/files/{path...}") { c in try await c.text(.ok, "file [\(c.param("path"))]") }
        app.post("/users") { c in try await c.text(.created, "created") }
        app.get("/dir/") { c in try await c.text(.ok, "dir") }
        app.delete("/users/{id}") { c in c.noContent() }
        return app
    }

    @Test func paramsWildcardsAndPrecedence() async throws {
        try await withServer(self.routingApp()) { (port: Int) async throws in
            #expect(try await request(port: port, "GET", "/users/42").text == "user 42")
            #expect(try await request(port: port, "GET", "/users/me").text == "me")
            #expect(try await request(port: port, "GET", "/users/7/posts/9").text == "7/9")
            #expect(try await request(port: port, "GET", "/files/a/b/c.txt").text == "file [a/b/c.txt]")
            #expect(try await request(port: port, "GET", "/files/").text == "file []")
            #expect(try await request(port: port, "GET", "/users/a%2Fb").text == "user a/b")
            #expect(try await request(port: port, "GET", "/users/x?y=1").text == "user x")
            #expect(try await request(port: port, "POST", "/users").status == 201)
            #expect(try await request(port: port, "DELETE", "/users/1").status == 204)
        }
    }

    @Test func notFoundMethodNotAllowedAndHead() async throws {
        try await withServer(self.routingApp()) { (port: Int) async throws in
            let missing = try await request(port: port, "GET", "/nope")
            #expect(missing.status == 404)
            let wrongMethod = try await request(port: port, "PUT", "/users/1")
            #expect(wrongMethod.status == 405)
            #expect(wrongMethod.header("allow") == "DELETE, GET, HEAD")
            let head = try await request(port: port, "HEAD", "/users/42")
            #expect(head.status == 200)
            #expect(head.header("content-length") == "7")
            #expect(head.body.isEmpty)
            let get = try await request(port: port, "GET", "/users/42")
            #expect(get.header("date")?.hasSuffix("GMT") == true)
        }
    }

    @Test func trailingSlashRedirectsToTheRegisteredForm() async throws {
        try await withServer(self.routingApp()) { (port: Int) async throws in
            let toSlash = try await request(port: port, "GET", "/dir?q=1")
            #expect(toSlash.status == 301)
            #expect(toSlash.header("location") == "/dir/?q=1")
            let fromSlash = try await request(port: port, "GET", "/users/5/")
            #expect(fromSlash.status == 301)
            #expect(fromSlash.header("location") == "/users/5")
            #expect(try await request(port: port, "POST", "/users/").status == 308)
        }
    }

    @Test func middlewareRunsInOrder() async throws {
        let trail = NIOLockedValueBox<[String]>([])
        func mark(_ name: String) -> Middleware {
            { next in
                { c in
                    trail.withLockedValue { $0.append(name + ">") }
                    try await next(c)
                    trail.withLockedValue { $0.append("<" + name) }
                }
            }
        }
        let app = App()
        app.use(mark("global"))
        app.group("/api") { api in
            api.use(mark("group"))
            api.with(mark("with")).get("/x") { c in
                trail.withLockedValue { $0.append("handler") }
                try await c.text(.ok, "x")
            }
        }
        app.prefix("/v2").get("/y") { c in try await c.text(.ok, "y") }
        try await withServer(app) { (port: Int) async throws in
            #expect(try await request(port: port, "GET", "/api/x").text == "x")
            #expect(trail.withLockedValue { $0 } == ["global>", "group>", "with>", "handler", "<with", "<group", "<global"])
            trail.withLockedValue { $0 = [] }
            #expect(try await request(port: port, "GET", "/v2/y").text == "y")
            #expect(trail.withLockedValue { $0 } == ["global>", "<global"])
            trail.withLockedValue { $0 = [] }
            _ = try await request(port: port, "GET", "/missing")
            // The 404 travels out through app middleware as a thrown HTTPError.
            #expect(trail.withLockedValue { $0 } == ["global>"], "app middleware sees 404s too")
        }
    }

    struct Boom: Error {}

    @Test func errorsGoThroughTheErrorHandler() async throws {
        let app = App()
        app.get("/http") { _ in throw HTTPError(.forbidden, "no entry") }
        app.get("/boom") { _ in throw Boom() }
        try await withServer(app) { (port: Int) async throws in
            let forbidden = try await request(port: port, "GET", "/http")
            #expect(forbidden.status == 403)
            #expect(forbidden.text == "no entry\n")
            let boom = try await request(port: port, "GET", "/boom")
            #expect(boom.status == 500)
            #expect(boom.text == "internal server error\n")
        }
        let custom = App()
        custom.get("/boom") { _ in throw Boom() }
        custom.setErrorHandler { c, error in
            try? await c.json(.serviceUnavailable, ["error": "\(type(of: error))"])
        }
        try await withServer(custom) { (port: Int) async throws in
            let response = try await request(port: port, "GET", "/boom")
            #expect(response.status == 503)
            #expect(response.text == #"{"error":"Boom"}"#)
            #expect(response.header("content-type") == "application/json; charset=utf-8")
        }
    }

    @Test func recoverMiddlewareLetsOuterMiddlewareSeeTheStatus() async throws {
        let seen = NIOLockedValueBox<UInt>(0)
        let app = App()
        app.use({ next in { c in try await next(c); seen.withLockedValue { $0 = c.writer.status.code } } })
        app.use(Middlewares.recover())
        app.use(Middlewares.logger())
        app.get("/boom") { _ in throw Boom() }
        try await withServer(app) { (port: Int) async throws in
            #expect(try await request(port: port, "GET", "/boom").status == 500)
            #expect(seen.withLockedValue { $0 } == 500)
        }
    }

    struct Signup: Codable { var name: String; var age: Int }

    @Test func bindJSONReportsWhatIsWrong() async throws {
        let app = App()
        app.post("/signup") { c in
            let signup = try c.bindJSON(Signup.self, limit: 64)
            try await c.json(.ok, signup)
        }
        try await withServer(app) { (port: Int) async throws in
            let ok = try await request(port: port, "POST", "/signup", body: #"{"name":"ann","age":3}"#)
            #expect(ok.status == 200)
            #expect(ok.text == #"{"age":3,"name":"ann"}"#, "keys sorted: output is deterministic")
            let cases: [(String, Int, String)] = [
                ("{not json", 400, "malformed JSON"),
                (#"{"name":"ann"}"#, 400, "missing field \"age\""),
                (#"{"name":"ann","age":"x"}"#, 400, "wrong type at \"age\""),
                ("", 400, "empty request body"),
                (#"{"name":""# + String(repeating: "a", count: 100) + #"","age":1}"#, 413, "request body exceeds 64 bytes"),
            ]
            for (body, status, message) in cases {
                let response = try await request(port: port, "POST", "/signup", body: body)
                #expect(response.status == status, "\(body)")
                #expect(response.text == message + "\n", "\(body)")
            }
        }
    }

    @Test func contextHelpers() async throws {
        let app = App()
        app.get("/c") { c in
            let text = "\(c.query("a") ?? "-") \(c.cookie("session") ?? "-") \(c.header("X-Thing") ?? "-")"
            try await c.status(.accepted).setHeader("x-reply", "yes").text(.accepted, text)
        }
        app.get("/html") { c in try await c.html(.ok, "<b>hi</b>") }
        app.get("/go") { c in try await c.redirect("/there") }
        app.get("/sse") { c in
            let stream = try await c.eventStream()
            try await stream.send(data: "one")
            try await stream.send(data: "two\nlines", event: "multi", id: "2")
        }
        try await withServer(app) { (port: Int) async throws in
            let response = try await request(
                port: port, "GET", "/c?a=b%20c", headers: ["Cookie": "x=1; session=abc", "x-thing": "T"])
            #expect(response.status == 202)
            #expect(response.text == "b c abc T")
            #expect(response.header("x-reply") == "yes")
            #expect(try await request(port: port, "GET", "/html").header("content-type") == "text/html; charset=utf-8")
            let redirect = try await request(port: port, "GET", "/go")
            #expect(redirect.status == 302)
            #expect(redirect.header("location") == "/there")
            let sse = try await request(port: port, "GET", "/sse")
            #expect(sse.header("content-type") == "text/event-stream")
            #expect(sse.header("transfer-encoding") == "chunked")
            #expect(sse.text == "data: one\n\nevent: multi\nid: 2\ndata: two\ndata: lines\n\n")
        }
    }
}
