import Foundation
import Mizu
import MizuCompat
@testable import MizuLive
import MizuWebSocket
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Where the Go `live` package's documented behaviour and ours must agree.
@Suite(.timeLimit(.minutes(10))) struct SeedFidelityTests {
    @Test func handshakeChecksRunInGosOrder() async throws {
        let authCalls = NIOLockedValueBox(0)
        try await withLiveServer({ options in
            let previous = options.onAuth!
            options.onAuth = { context, request in
                authCalls.withLockedValue { $0 += 1 }
                return try await previous(context, request)
            }
        }) { _, _, port in
            func status(_ lines: [String]) async throws -> HTTPTestResponse {
                let client = try await RawClient.connect(port: port)
                try await client.send(lines.joined(separator: "\r\n") + "\r\n\r\n")
                defer { Task { await client.close() } }
                return try await client.readResponse()
            }
            let upgrade = ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13"]
            #expect(try await status(["GET /ws?user=a HTTP/1.1", "Host: x"]).status == 400, "a plain GET")
            #expect(try await status(["GET /ws?user=a HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 8"]).status == 426)
            #expect(try await status(["GET /ws?user=a HTTP/1.1", "Host: x", "Origin: http://evil.test"] + upgrade).status == 403)
            #expect(authCalls.withLockedValue { $0 } == 0, "onAuth never runs for what is not a WebSocket request, or a foreign origin")
            let refused = try await status(["GET /ws HTTP/1.1", "Host: x", "Sec-WebSocket-Key: short"] + upgrade)
            #expect(refused.status == 401, "auth before the key check")
            #expect(refused.text == "unauthorized\n", "a fixed reason, never the application's error")
            #expect(try await status(["GET /ws?user=a HTTP/1.1", "Host: x", "Sec-WebSocket-Key: short"] + upgrade).status == 400)
            #expect(authCalls.withLockedValue { $0 } == 2)
        }
    }

    @Test func repliesKeepTheOrderOfTheFrames() async throws {
        try await withLiveServer({ options in
            options.onMessage = { _, session, topic, _ in
                try? await Task.sleep(nanoseconds: 50_000_000)
                try? session.send(Live.Message(topic: "reply", data: Data(#""\#(topic)""#.utf8)))
            }
        }) { _, _, port in
            let socket = try await TestWebSocket.live(port: port)
            try await socket.send(text: #"{"topic":"first"}"#)
            try await socket.send(text: "not json")
            #expect(try await socket.readText() == #"{"topic":"reply","data":"first"}"#)
            #expect(try await socket.readText() == #"{"topic":"error","data":"bad message"}"#)
        }
    }

    @Test func dataThatIsNotOneJSONValueNeverReachesAClient() async throws {
        try await withLiveServer { server, log, port in
            let socket = try await TestWebSocket.live(port: port)
            let session = try await log.waitFor(sessions: 1)[0]
            server.subscribe(session, "t")
            for bad in [Data("not json".utf8), Data("{\"a\":1} {}".utf8), Data([0x22, 0xFF, 0x22]), Data("[1,".utf8)] {
                server.publish("t", bad)
            }
            #expect(throws: Live.Error.invalidData) { try session.send(Live.Message(topic: "t", data: Data("{bad".utf8))) }
            server.publish("t", Data(#" {"ok":true} "#.utf8))
            #expect(try await socket.readText() == #"{"topic":"t","data": {"ok":true} }"#, "valid bytes go out exactly as given")
            #expect(server.invalidDataCount == 5)
        }
    }

    @Test func thePublicWebSocketAPICannotEmitInvalidFrames() async throws {
        #expect(WebSocketMessage(opcode: .ping, data: ByteBuffer(repeating: 0, count: 300)) == nil)
        #expect(WebSocketMessage(opcode: .continuation, data: ByteBuffer()) == nil)
        #expect(WebSocketMessage(opcode: .close, data: ByteBuffer()) == nil)
        #expect(WebSocketMessage(opcode: .binary, data: ByteBuffer(bytes: [1]))?.opcode == .binary)
        let events = WebSocketEvents(onOpen: { connection in
            connection.ping(Array(repeating: 7, count: 300))
            connection.close(code: 1005, reason: String(repeating: "é", count: 100))
        })
        let app = App()
        app.get("/ws", compat(WebSocketHandler(events: events)))
        try await withServer(app) { (port: Int) async throws in
            let socket = try await TestWebSocket.connect(port: port, path: "/ws")
            let ping = try await socket.readFrame()
            #expect(ping.opcode == 0x9 && ping.payload.count == 125)
            let close = try await socket.readFrame()
            #expect(close.opcode == 0x8)
            #expect(close.closeCode == 1000, "1005 may not be sent")
            #expect(close.payload.count <= 125 && String(validating: close.payload.dropFirst(2), as: UTF8.self) != nil)
        }
    }
}
