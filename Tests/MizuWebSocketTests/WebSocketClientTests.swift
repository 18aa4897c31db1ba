import Foundation
import Mizu
import MizuCompat
@testable import MizuWebSocket
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// The client half of RFC 6455: the handshake's values and checks alone, then real
/// connections to the server half, and servers that answer wrongly.
@Suite(.timeLimit(.minutes(10))) struct WebSocketClientTests {
    // MARK: The handshake as values

    @Test func targetsComeFromWebSocketURLsOnly() throws {
        let plain = try WebSocketClientHandshake.Target(url: "ws://example.com:8080/ws?token=a%20b")
        #expect(plain.host == "example.com" && plain.port == 8080 && plain.requestTarget == "/ws?token=a%20b" && !plain.secure)
        #expect(plain.hostHeader == "example.com:8080")
        let bare = try WebSocketClientHandshake.Target(url: "WS://example.com")
        #expect(bare.port == 80 && bare.requestTarget == "/" && bare.hostHeader == "example.com")
        let secure = try WebSocketClientHandshake.Target(url: "wss://example.com/x")
        #expect(secure.secure && secure.port == 443)
        let six = try WebSocketClientHandshake.Target(url: "ws://[::1]:9/x")
        #expect(six.host == "::1" && six.hostHeader == "[::1]:9")
        for bad in ["http://example.com/", "ws://", "ws:///path", "example.com", "ws://h:0/", "ws://h:70000/", "ws://h/#frag", ""] {
            #expect(throws: WebSocketClientError.self, "\(bad)") { try WebSocketClientHandshake.Target(url: bad) }
        }
    }

    private func handshake(subprotocols: [String] = [], compression: PerMessageDeflateConfiguration? = PerMessageDeflateConfiguration()) throws -> WebSocketClientHandshake {
        WebSocketClientHandshake(target: try .init(url: "ws://h/"), subprotocols: subprotocols, compression: compression, extraHeaders: [("Authorization", "Bearer t")])
    }

    private func response(_ handshake: WebSocketClientHandshake, accept: String? = nil, _ extra: [(String, String)] = []) -> HTTPResponseHead {
        let key = accept ?? WebSocketHandshake.acceptValue(forKey: handshake.key)
        return HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: HTTPHeaders(
            [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", key)] + extra))
    }

    @Test func theRequestCarriesAFreshKeyTheOffersAndTheCallersHeaders() throws {
        let first = try self.handshake(subprotocols: ["a", "b"])
        let second = try self.handshake()
        #expect(first.key != second.key && Data(base64Encoded: first.key)?.count == 16)
        let head = first.requestHead
        #expect(head.method == .GET && head.uri == "/" && head.headers.first(name: "sec-websocket-version") == "13")
        #expect(head.headers.first(name: "sec-websocket-protocol") == "a, b")
        #expect(head.headers.first(name: "sec-websocket-extensions") == "permessage-deflate; server_no_context_takeover; client_max_window_bits")
        #expect(head.headers.first(name: "authorization") == "Bearer t")
    }

    @Test func aValid101IsAcceptedAndAnythingNotAskedForFailsTheConnection() throws {
        let handshake = try self.handshake(subprotocols: ["v1"])
        let agreed = try handshake.validate(self.response(handshake, [
            ("Sec-WebSocket-Protocol", "v1"),
            ("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover; client_max_window_bits=10"),
        ]))
        #expect(agreed.subprotocol == "v1")
        #expect(agreed.deflate == NegotiatedDeflate(serverNoContextTakeover: true, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 10))
        #expect(try handshake.validate(self.response(handshake)).deflate == nil, "the server may decline compression")
        let eight = try handshake.validate(self.response(handshake, [("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits=8")]))
        #expect(eight.deflate?.sending(.client).compresses == false, "zlib cannot deflate with a window of 8: send uncompressed")

        let refusals: [(HTTPResponseHead, String)] = [
            (self.response(handshake, accept: "d3Jvbmc="), "wrong accept"),
            (self.response(handshake, [("Sec-WebSocket-Protocol", "v2")]), "subprotocol not offered"),
            (self.response(handshake, [("Sec-WebSocket-Extensions", "x-custom")]), "extension not offered"),
            (self.response(handshake, [("Sec-WebSocket-Extensions", "permessage-deflate, permessage-deflate")]), "two deflates"),
            (self.response(handshake, [("Sec-WebSocket-Extensions", "permessage-deflate; mystery")]), "unknown parameter"),
            (self.response(handshake, [("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=16")]), "window past 15"),
            (self.response(handshake, [("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits=09")]), "leading zero"),
            (self.response(handshake, [("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover; server_no_context_takeover")]), "repeated"),
            (HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: ["Connection": "Upgrade"]), "no Upgrade"),
        ]
        for (head, why) in refusals {
            #expect(throws: WebSocketClientError.self, "\(why)") { try handshake.validate(head) }
        }
        let plain = try self.handshake(compression: nil)
        #expect(throws: WebSocketClientError.self, "nothing offered, deflate answered") {
            try plain.validate(self.response(plain, [("Sec-WebSocket-Extensions", "permessage-deflate")]))
        }
    }

    // MARK: Real connections

    private func serveEcho(_ configuration: WebSocketConfiguration = WebSocketConfiguration(), _ body: (Int) async throws -> Void) async throws {
        let app = App()
        app.get("/ws", compat(WebSocketHandler(configuration: configuration, events: WebSocketEvents(
            onMessage: { connection, message in connection.send(message) }))))
        try await withServer(app) { (port: Int) async throws in try await body(port) }
    }

    /// What a client connection received, and how it ended.
    private final class Inbox: Sendable {
        let messages = NIOLockedValueBox<[WebSocketMessage]>([])
        let reasons = NIOLockedValueBox<[WebSocketCloseReason]>([])
        var events: WebSocketEvents {
            WebSocketEvents(
                onMessage: { _, message in self.messages.withLockedValue { $0.append(message) } },
                onClose: { _, reason in self.reasons.withLockedValue { $0.append(reason) } })
        }

        func waitFor(messages count: Int) async throws -> [WebSocketMessage] {
            try await eventually("\(count) messages") { self.messages.withLockedValue { $0.count >= count ? $0 : nil } }
        }

        func waitForClose() async throws -> WebSocketCloseReason {
            try await eventually("the close") { self.reasons.withLockedValue { $0.first } }
        }
    }

    @Test(arguments: [true, false])
    func aClientTalksToTheServerHalfWithAndWithoutCompression(_ compressed: Bool) async throws {
        var configuration = WebSocketConfiguration()
        if !compressed { configuration.compression = nil }
        try await self.serveEcho { port in
            let inbox = Inbox()
            var client = WebSocketClient(configuration: configuration)
            client.handshakeTimeout = Patience.scaled(.seconds(10))  // a healthy server beats it however loaded the machine
            let connection = try await client.connect(to: "ws://127.0.0.1:\(port)/ws", events: inbox.events)
            #expect(connection.isCompressed == compressed)
            let large = String(repeating: "compressible text ", count: 20_000)
            let binary = ByteBuffer(bytes: (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 13) })
            connection.send(.text("hello"))
            connection.send(.text(large))
            connection.send(WebSocketMessage(dataOpcode: .binary, data: binary))
            connection.send(.text(""))
            let echoed = try await inbox.waitFor(messages: 4)
            #expect(echoed[0] == .text("hello") && echoed[1] == .text(large) && echoed[3] == .text(""))
            #expect(echoed[2].opcode == .binary && echoed[2].data == binary)
            connection.close(code: 1000)
            #expect(try await inbox.waitForClose() == .serverClosed(code: 1000, reason: ""))
        }
    }

    @Test func theServersRefusalIsReportedWithItsStatusAndRetryAfter() async throws {
        let app = App()
        app.get("/ws") { c in
            c.setHeader("Retry-After", "7")
            try await c.text(.serviceUnavailable, "busy, come back later")
        }
        // A healthy server answers within the handshake deadline however loaded the machine:
        // scaled like every wait for the server (the 404 once took over 10 s in a full run).
        var client = WebSocketClient()
        client.handshakeTimeout = Patience.scaled(.seconds(10))
        try await withServer(app) { (port: Int) async throws in
            await #expect(throws: WebSocketClientError.refused(status: 503, retryAfter: 7, reason: "busy, come back later")) {
                _ = try await client.connect(to: "ws://127.0.0.1:\(port)/ws")
            }
            do {
                _ = try await client.connect(to: "ws://127.0.0.1:\(port)/elsewhere")
                Issue.record("connected to a route that does not exist")
            } catch {
                guard case .refused(404, nil, _)? = error as? WebSocketClientError else {
                    Issue.record("\(error)")
                    return
                }
            }
        }
    }

    @Test func aServerThatNeverAnswersOrAnswersWronglyFailsTheConnect() async throws {
        // Accepts and reads, answers `reply` (nothing: never), keeps the socket open.
        for (reply, expected) in [
            (nil, WebSocketClientError.timeout),
            ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: d3Jvbmc=\r\n\r\n",
             .invalidHandshake("wrong Sec-WebSocket-Accept")),
            ("garbage\r\n\r\n", .invalidHandshake("malformed response head")),
            ("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n folded: continuation\r\n\r\n", .invalidHandshake("malformed response head")),
            ("HTTP/1.1 101 OK\r\n" + String(repeating: "X-Pad: 0123456789abcdef\r\n", count: 1000), .invalidHandshake("response head over 16384 bytes")),
            ("HTTP/1.1 429 Too Many\r\nRetry-After: 3\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nslow down\r\n0\r\n\r\n",
             .refused(status: 429, retryAfter: 3, reason: "slow down")),
        ] as [(String?, WebSocketClientError?)] {
            let server = try await ScriptedServer.start(reply: reply)
            var client = WebSocketClient()
            // The silent server is waited out (short); an answer must never meet the deadline,
            // however loaded the machine (long).
            client.handshakeTimeout = Patience.scaled(reply == nil ? .milliseconds(300) : .seconds(10))
            do {
                _ = try await client.connect(to: "ws://127.0.0.1:\(server.port)/")
                Issue.record("connected to a server that answers \(reply ?? "nothing")")
            } catch {
                if case .connectFailed = error, reply == nil {
                    // The deadline also bounds the connect: on a starved machine it may end there.
                } else if let expected {
                    #expect(error == expected)
                }
            }
            try await server.stop()
        }
        for (name, value) in [("X-Bad", "a\r\nInjected: yes"), ("Bad Name", "v"), ("X-Nul", "a\u{0}b"), ("", "v")] {
            await #expect(throws: WebSocketClientError.invalidHeader(name), "header \(name)") {
                _ = try await WebSocketClient().connect(to: "ws://127.0.0.1:1/", headers: [(name, value)])
            }
        }
        await #expect(throws: WebSocketClientError.self, "nothing listens there") {
            _ = try await WebSocketClient().connect(to: "ws://127.0.0.1:1/")
        }
    }
}

/// A TCP server that answers the first read with fixed bytes (or never), for handshakes no
/// real server would send.
private struct ScriptedServer {
    let channel: any Channel
    var port: Int { self.channel.localAddress?.port ?? 0 }

    static func start(reply: String?) async throws -> ScriptedServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture { try child.pipeline.syncOperations.addHandler(Answer(reply: reply)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ScriptedServer(channel: channel)
    }

    func stop() async throws { try await self.channel.close() }

    private final class Answer: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let reply: String?
        var answered = false
        init(reply: String?) { self.reply = reply }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !self.answered, let reply else { return }
            self.answered = true
            context.writeAndFlush(NIOAny(ByteBuffer(string: reply)), promise: nil)
        }
    }
}
