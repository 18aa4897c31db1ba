import Foundation
import Logging
import Mizu
import MizuCompat
@testable import MizuLive
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import Testing

/// App and Live.Server as Services in a ServiceGroup: a graceful shutdown closes sessions
/// with 1001, then stops the HTTP server.
@Suite(.timeLimit(.minutes(10))) struct ServiceLifecycleTests {
    @Test func aGracefulShutdownClosesSessionsThenStopsListening() async throws {
        let server = Live.Server(Live.Options(onMessage: { _, _, _, _ in }))
        let app = App(logsRequests: false)
        app.get("/ws", compat(server.handler()))
        let group = ServiceGroup(services: [app.service("127.0.0.1:0"), server], logger: Logger(label: "test"))
        let running = Task { try await group.run() }
        let port = try await eventually("the app to listen") { app.localAddress?.port }

        let socket = try await TestWebSocket.live(port: port)
        #expect(socket.response.status == 101)
        _ = try await eventually("the session to open") { server.sessionCount == 1 ? true : nil }

        await group.triggerGracefulShutdown()
        let close = try await socket.readFrameSkippingPings()  // a slow run may pass a heartbeat
        #expect(close.opcode == 0x8 && close.closeCode == 1001)
        try await socket.send(0x8, [0x03, 0xE9])
        try await running.value
        #expect(server.sessionCount == 0)
        #expect(app.isShuttingDown)
        await #expect(throws: (any Error).self, "nothing listens any more") {
            _ = try await RawClient.connect(port: port, timeout: .seconds(2))
        }
    }

    @Test func anHTTPServerRunsAsAServiceToo() async throws {
        let app = App(logsRequests: false)
        app.get("/hi") { c in try await c.text(.ok, "hi") }
        let http = HTTPServer(handler: app)
        let group = ServiceGroup(services: [http.service(host: "127.0.0.1", port: 0)], logger: Logger(label: "test"))
        let running = Task { try await group.run() }
        let port = try await eventually("the server to listen") { http.localAddress?.port }
        #expect(try await request(port: port, "GET", "/hi").text == "hi")
        await group.triggerGracefulShutdown()
        try await running.value
        let reconnected = try? await RawClient.connect(port: port, timeout: .seconds(2))
        #expect(reconnected == nil, "nothing listens any more")
    }
}
