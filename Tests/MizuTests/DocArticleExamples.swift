// The code of the Mizu and MizuHTTP articles (Sources/*/*.docc), compiled here:
// scripts/docs.sh checks that every Swift block of an article appears in one of the
// DocArticleExamples files, line for line. Keep both in step.
import Foundation
import Mizu
import MizuHTTP
import MizuTestSupport
import Testing

struct RouterArticleExample {
    struct Signup: Codable { var email: String }

    func makeApp() -> App {
        let app = App()                                   // logs each request
        app.use(Middlewares.recover())                    // a crash in a handler answers 500
        app.get("/users/{id}") { c in try await c.json(.ok, ["id": c.param("id")]) }
        app.get("/files/{path...}") { c in try await c.text(.ok, c.param("path")) }
        app.group("/api") { api in
            api.post("/signup") { c in
                let form = try c.bindJSON(Signup.self)    // 400 with the reason: bad JSON, an unknown field
                try await c.json(.created, form)
            }
        }
        app.staticFiles("/assets", directory: "Public")   // ETag, Last-Modified, Range, index.html
        return app
    }

    func mountOrders(on app: App) {
        app.get("/orders/{id}") { c in
            guard let id = Int(c.param("id")) else { throw HTTPError(.badRequest, "id is a number") }
            try await c.json(.ok, ["id": id])
        }
    }

    func addMiddleware(to app: App) {
        app.use(Middlewares.requestID())
        app.use(Middlewares.cors(CORSOptions(allowedOrigins: ["https://app.example.com"])))
        app.use(Middlewares.gzip())
        app.use(Middlewares.timeout(.seconds(10)))        // 503 at the deadline
    }

    func serveHello() async throws -> HTTPServer {
        let server = HTTPServer(handler: HTTPHandlerFunc { writer, request in
            writer.setHeader("content-type", "text/plain")
            writer.writeHead(.ok)
            try await writer.write("hello, \(request.path)")
        })
        _ = try await server.start(host: "127.0.0.1", port: 0)
        return server
    }
}
