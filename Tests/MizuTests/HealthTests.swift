import Mizu
import MizuTestSupport
import NIOConcurrencyHelpers
import Testing

/// Go mizu's /livez and /readyz.
@Suite(.timeLimit(.minutes(10))) struct HealthTests {
    @Test func livezAndReadyzAnswerOkWhileServing() async throws {
        let app = App(logsRequests: false)
        app.health()
        try await withServer(app) { (port: Int) async throws in
            let live = try await request(port: port, "GET", "/livez")
            #expect(live.status == 200 && live.text == "ok\n")
            let ready = try await request(port: port, "GET", "/readyz")
            #expect(ready.status == 200 && ready.text == "ok\n")
        }
    }

    @Test func readyzNamesTheFailingCheck() async throws {
        let redisUp = NIOLockedValueBox(false)
        let app = App(logsRequests: false)
        app.health(checks: ["redis": { redisUp.withLockedValue { $0 } }, "disk": { true }])
        try await withServer(app) { (port: Int) async throws in
            let down = try await request(port: port, "GET", "/readyz")
            #expect(down.status == 503 && down.text == "not ready: redis\n")
            redisUp.withLockedValue { $0 = true }
            #expect(try await request(port: port, "GET", "/readyz").status == 200)
        }
    }

    @Test func readyzTurns503WhenShutdownBeginsWhileLivezStays200() async throws {
        let app = App(logsRequests: false)
        app.health()
        let release = AsyncStream<Void>.makeStream()
        app.onShutdown { for await _ in release.stream { break } }
        let address = try await app.start(host: "127.0.0.1", port: 0)
        let port = address.port!
        #expect(try await request(port: port, "GET", "/readyz").status == 200)
        let shutdown = Task { await app.shutdown() }
        let ready = try await eventuallyAsync("readyz turned") { () -> HTTPTestResponse? in
            let ready = try await request(port: port, "GET", "/readyz")
            return ready.status == 200 ? nil : ready
        }
        #expect(ready.status == 503 && ready.text == "shutting down\n")
        #expect(try await request(port: port, "GET", "/livez").status == 200, "alive while draining")
        release.continuation.yield()
        release.continuation.finish()
        await shutdown.value
    }
}
