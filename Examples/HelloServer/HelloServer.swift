import ArgumentParser
import Mizu

/// The smallest Mizu app: `GET /hello` answers "Hello, World!". The HTTP benchmark target.
@main
struct HelloServer: AsyncParsableCommand {
    @Option(help: "Port to listen on.")
    var port: Int = 8081

    @Option(help: "Address to bind.")
    var host: String = "127.0.0.1"

    func run() async throws {
        // wrk measures routing here; a log line per request would measure stdout instead.
        let app = App(logsRequests: false)
        app.get("/hello") { c in try await c.text(.ok, "Hello, World!") }
        try await app.listen("\(self.host):\(self.port)")
    }
}
