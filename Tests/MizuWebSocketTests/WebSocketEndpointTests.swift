import Foundation
import Mizu
import MizuCompat
@testable import MizuWebSocket
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// An echo endpoint that records how each connection ended.
final class EchoRecorder: Sendable {
    let reasons = NIOLockedValueBox<[WebSocketCloseReason]>([])
    let connections = NIOLockedValueBox<[WebSocketConnection]>([])

    func events() -> WebSocketEvents {
        WebSocketEvents(
            onOpen: { connection in self.connections.withLockedValue { $0.append(connection) } },
            onMessage: { connection, message in connection.send(message) },
            onClose: { _, reason in self.reasons.withLockedValue { $0.append(reason) } })
    }

    /// The `number`th connection opened (1-based), once it is open.
    func waitForConnection(_ number: Int) async throws -> WebSocketConnection {
        try await eventually("connection \(number) to open") { self.connections.withLockedValue { $0.count >= number ? $0[number - 1] : nil } }
    }

    func waitForReasons(_ count: Int) async throws -> [WebSocketCloseReason] {
        try await eventually("\(count) close reasons") { self.reasons.withLockedValue { $0.count >= count ? $0 : nil } }
    }
}

@Suite(.timeLimit(.minutes(10))) struct WebSocketEndpointTests {
    func serve(_ configuration: WebSocketConfiguration = WebSocketConfiguration(), recorder: EchoRecorder = EchoRecorder(),
               _ body: (Int) async throws -> Void) async throws {
        let app = App()
        app.get("/ws", compat(WebSocketHandler(configuration: configuration, events: recorder.events())))
        try await withServer(app) { (port: Int) async throws in try await body(port) }
    }

    @Test func handshakeAnswersWithTheAcceptKey() async throws {
        try await self.serve { (port: Int) async throws in
            let socket = try await TestWebSocket.connect(port: port, path: "/ws")
            #expect(socket.response.status == 101)
            // RFC 6455 section 1.3's own example.
            #expect(socket.response.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            #expect(socket.response.header("sec-websocket-extensions") == nil, "no extension offered, none answered")
            try await socket.send(text: "hi")
            #expect(try await socket.readFrame() == ServerFrame(fin: true, rsv1: false, opcode: 1, payload: Array("hi".utf8)))
            await socket.client.close()
        }
    }

    @Test func badHandshakesGetTheStatusTheRFCNames() async throws {
        try await self.serve { (port: Int) async throws in
            let base = ["Host: x", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: \(TestWebSocket.key)", "Sec-WebSocket-Version: 13"]
            func send(_ lines: [String], method: String = "GET", version: String = "HTTP/1.1") async throws -> HTTPTestResponse {
                let client = try await RawClient.connect(port: port)
                try await client.send((["\(method) /ws \(version)"] + lines).joined(separator: "\r\n") + "\r\n\r\n")
                let response = try await client.readResponse()
                await client.close()
                return response
            }
            #expect(try await send(["Host: x"]).status == 400, "plain HTTP to a WebSocket endpoint (as Go)")
            let version = try await send(base.filter { !$0.hasPrefix("Sec-WebSocket-Version") } + ["Sec-WebSocket-Version: 8"])
            #expect(version.status == 426)
            #expect(version.header("sec-websocket-version") == "13")
            #expect(try await send(base.filter { !$0.hasPrefix("Sec-WebSocket-Key") } + ["Sec-WebSocket-Key: short"]).status == 400)
            #expect(try await send(base.filter { !$0.hasPrefix("Sec-WebSocket-Key") }).status == 400)
            #expect(try await send(base.filter { !$0.hasPrefix("Connection") } + ["Connection: keep-alive"]).status == 400)
            #expect(try await send(base.filter { !$0.hasPrefix("Upgrade") } + ["Upgrade: h2c"]).status == 400)
            let wrong = try await send(base, version: "HTTP/1.0")
            #expect(wrong.status == 400)
            #expect(wrong.text.contains("HTTP/1.1"))
            // Case-insensitive tokens and a Connection list are fine.
            let fine = try await send(["Host: x", "upgrade: WebSocket", "connection: keep-alive, UPGRADE",
                                       "sec-websocket-key: \(TestWebSocket.key)", "sec-websocket-version: 13"])
            #expect(fine.status == 101)
        }
    }

    @Test func negotiatesCompressionAndSubprotocols() async throws {
        var configuration = WebSocketConfiguration()
        configuration.subprotocols = ["chat.v2", "chat.v1"]
        try await self.serve(configuration) { (port: Int) async throws in
            let socket = try await TestWebSocket.connect(port: port, path: "/ws", headers: [
                "Sec-WebSocket-Protocol: other, chat.v1", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
            ])
            #expect(socket.response.header("sec-websocket-protocol") == "chat.v1")
            #expect(socket.response.header("sec-websocket-extensions") == "permessage-deflate; server_no_context_takeover")
            // A long message comes back compressed; a short one does not.
            let long = String(repeating: "abc", count: 100)
            try await socket.send(text: long)
            let frame = try await socket.readFrame()
            #expect(frame.rsv1)
            var payload = ByteBuffer(bytes: frame.payload + [0, 0, 0xFF, 0xFF])
            var inflated = ByteBuffer()
            try Inflater(windowBits: 15).inflate(payload, into: &inflated, limit: 1000)
            #expect(String(buffer: inflated) == long)
            payload.clear()
            try await socket.send(text: "short")
            #expect(try await socket.readFrame().rsv1 == false)
            await socket.client.close()
        }
    }

    @Test func echoesFragmentedMessagesWithPingsBetween() async throws {
        try await self.serve { (port: Int) async throws in
            let socket = try await TestWebSocket.connect(port: port, path: "/ws")
            try await socket.send(0x1, Array("frag".utf8), fin: false)
            try await socket.send(0x9, Array("ping!".utf8))
            #expect(try await socket.readFrame() == ServerFrame(fin: true, rsv1: false, opcode: 0xA, payload: Array("ping!".utf8)))
            try await socket.send(0x0, Array("men".utf8), fin: false)
            try await socket.send(0x0, Array("ted".utf8))
            #expect(try await socket.readFrame().text == "fragmented")
            try await socket.send(0x2, [0, 1, 2, 255])
            #expect(try await socket.readFrame() == ServerFrame(fin: true, rsv1: false, opcode: 2, payload: [0, 1, 2, 255]))
            await socket.client.close()
        }
    }

    @Test func violationsCloseWithTheirCodes() async throws {
        var configuration = WebSocketConfiguration()
        configuration.maxMessageSize = 1000
        let recorder = EchoRecorder()
        try await self.serve(configuration, recorder: recorder) { (port: Int) async throws in
            let cases: [([UInt8], UInt16)] = [
                (clientFrame(0x1, Array("x".utf8), mask: nil), 1002),
                (clientFrame(0x1, [0xCE, 0xBA, 0xFF]), 1007),
                (clientFrame(0x2, [UInt8](repeating: 0, count: 1001)), 1009),
                (clientFrame(0x1, Array("x".utf8), rsv: 0x20), 1002),
                (clientFrame(0x0, Array("x".utf8)), 1002),
                (clientFrame(0x8, [0x03, 0xED]), 1002),  // close code 1005 may not be sent
            ]
            for (wire, code) in cases {
                let socket = try await TestWebSocket.connect(port: port, path: "/ws")
                try await socket.client.send(wire)
                let close = try await socket.expectClose()
                #expect(close.closeCode == code, "\(wire.prefix(4))")
            }
            let reasons = try await recorder.waitForReasons(cases.count)
            #expect(reasons.contains(.protocolViolation(code: 1009, reason: "message too large")))
            #expect(reasons.contains(.protocolViolation(code: 1007, reason: "invalid UTF-8 in text")))
        }
    }

    @Test func closeHandshakeFromEitherSide() async throws {
        var configuration = WebSocketConfiguration()
        configuration.closeTimeout = .milliseconds(200)
        let recorder = EchoRecorder()
        try await self.serve(configuration, recorder: recorder) { (port: Int) async throws in
            // The client closes: the server echoes the code and closes TCP.
            let clientCloses = try await TestWebSocket.connect(port: port, path: "/ws")
            try await clientCloses.send(0x8, [0x03, 0xE8] + Array("done".utf8))
            #expect(try await clientCloses.expectClose().closeCode == 1000)
            #expect(try await recorder.waitForReasons(1)[0] == .peerClosed(code: 1000, reason: "done"))

            // The server closes and the client answers.
            let serverCloses = try await TestWebSocket.connect(port: port, path: "/ws")
            try await recorder.waitForConnection(2).close(code: 4001, reason: "bye")
            let frame = try await serverCloses.readFrame()
            #expect(frame.closeCode == 4001)
            #expect(frame.text.hasSuffix("bye"))
            try await serverCloses.send(0x8, [0x0F, 0xA1])
            _ = try await serverCloses.client.waitForClose()
            #expect(try await recorder.waitForReasons(2)[1] == .serverClosed(code: 4001, reason: "bye"))

            // The server closes and the client never answers: TCP closes after the timeout.
            let silent = try await TestWebSocket.connect(port: port, path: "/ws")
            try await recorder.waitForConnection(3).close()
            #expect(try await silent.readFrameSkippingPings().closeCode == 1000)
            _ = try await silent.client.waitForClose(timeout: .seconds(3))

            // The TCP connection just drops.
            let dropped = try await TestWebSocket.connect(port: port, path: "/ws")
            await dropped.client.close()
            #expect(try await recorder.waitForReasons(4)[3] == .connectionLost)
        }
    }

    @Test func deadPeersAreClosedByTheHeartbeat() async throws {
        var configuration = WebSocketConfiguration()
        configuration.pingInterval = .milliseconds(150)
        configuration.pongTimeout = Patience.scaled(.milliseconds(600))  // the live client must beat it
        let recorder = EchoRecorder()
        try await self.serve(configuration, recorder: recorder) { (port: Int) async throws in
            let socket = try await TestWebSocket.connect(port: port, path: "/ws")
            let ping = try await socket.readFrame(timeout: .seconds(3))
            #expect(ping.opcode == 0x9)
            // Answer once, then play dead.
            try await socket.send(0xA, ping.payload)
            #expect(try await socket.readFrame(timeout: .seconds(3)).opcode == 0x9)
            _ = try await socket.client.waitForClose(timeout: .seconds(3))
            #expect(try await recorder.waitForReasons(1) == [.heartbeatTimeout])
        }
    }

    struct WeakConnection: Sendable {
        weak var value: WebSocketConnection?
    }

    @Test func closedConnectionsAreFreedWhileHeartbeatsRun() async throws {
        var configuration = WebSocketConfiguration()
        configuration.pingInterval = .seconds(30)  // seated on the loop's wheel, never due here
        let opened = NIOLockedValueBox<[WeakConnection]>([])
        let closed = NIOLockedValueBox(0)
        let events = WebSocketEvents(
            onOpen: { connection in opened.withLockedValue { $0.append(WeakConnection(value: connection)) } },
            onMessage: { _, _ in },
            onClose: { _, _ in closed.withLockedValue { $0 += 1 } })
        let app = App(logsRequests: false)
        app.get("/ws", compat(WebSocketHandler(configuration: configuration, events: events)))
        try await withServer(app) { (port: Int) async throws in
            var sockets: [TestWebSocket] = []
            for _ in 0..<3 { sockets.append(try await TestWebSocket.connect(port: port, path: "/ws")) }
            _ = try await eventually("3 open") { opened.withLockedValue { $0.count == 3 ? true : nil } }
            // The middle one first: the last seat moves into its place on the wheel.
            for index in [1, 0, 2] {
                await sockets[index].client.close()
                _ = try await eventually("closed") { closed.withLockedValue { $0 > 0 ? true : nil } }
            }
            _ = try await eventually("3 closed") { closed.withLockedValue { $0 == 3 ? true : nil } }
            _ = try await eventually("every connection freed") {
                opened.withLockedValue { $0.allSatisfy { $0.value == nil } ? true : nil }
            }
        }
    }

    @Test func aFullSendQueueClosesOnlyTheSlowConnection() async throws {
        var configuration = WebSocketConfiguration()
        configuration.maxQueuedMessages = 4
        configuration.compression = nil
        let recorder = EchoRecorder()
        try await self.serve(configuration, recorder: recorder) { (port: Int) async throws in
            let socket = try await TestWebSocket.connect(port: port, path: "/ws")
            let connection = try await recorder.waitForConnection(1)
            // A peer that takes nothing (it stops reading; 6 MB fill the kernel's buffers and
            // the socket is no longer writable), then five sends in one tick: the queue is
            // full with what the socket has not taken.
            try await socket.client.stopReading()
            connection.send(.binary([UInt8](repeating: 7, count: 6_000_000)))
            try await connection.eventLoop.submit {
                for index in 0..<5 { connection.handler?.send(.text("m\(index)")) }
            }.get()
            #expect(try await recorder.waitForReasons(1) == [.sendQueueFull])
            _ = try await socket.client.waitForClose()
        }
    }

    @Test func aConnectionReportsWhyItClosed() async throws {
        let recorder = EchoRecorder()
        let app = App()
        app.get("/ws", compat(WebSocketHandler(events: recorder.events())))
        try await withServer(app) { (port: Int) async throws in
            let socket = try await TestWebSocket.connect(port: port, path: "/ws")
            let connection = try await recorder.waitForConnection(1)
            try await socket.send(0x8, [0x0F, 0xA0] + Array("later".utf8))
            #expect(await connection.closeReason() == .peerClosed(code: 4000, reason: "later"))
            let reason = try await connection.closeFuture.get()
            #expect(reason == .peerClosed(code: 4000, reason: "later"))
        }
    }

    @Test func shutdownClosesWith1001() async throws {
        let recorder = EchoRecorder()
        let app = App()
        app.get("/ws", compat(WebSocketHandler(events: recorder.events())))
        let port = try await app.start(host: "127.0.0.1", port: 0).port!
        let socket = try await TestWebSocket.connect(port: port, path: "/ws")
        _ = try await recorder.waitForConnection(1)
        async let shutdown: Void = app.shutdown()
        let frame = try await socket.readFrame()
        #expect(frame.closeCode == 1001)
        try await socket.send(0x8, [0x03, 0xE9])
        _ = try await socket.client.waitForClose()
        await shutdown
        #expect(try await recorder.waitForReasons(1) == [.serverShutdown])
    }
}
