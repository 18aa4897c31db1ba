import Foundation
import Mizu
import MizuCompat
@_spi(Benchmarking) @testable import MizuLive
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// WebSocket peers that attack the server's memory and deadlines, one at a time, over real
/// sockets. A flood's accepted bytes bound what the server holds (see ``HostilePeer``).
@Suite(.timeLimit(.minutes(2))) struct HostileWebSocketTests {
    /// With reads stopped an echo flood gets 6-10 MB through (the kernel buffers on both
    /// sides, autotuned while the server still read); without, 81 MB in the same time.
    static let floodBound = 20 * 1024 * 1024
    static let floodLimit = 512 * 1024 * 1024

    private func serve(
        _ configure: (inout WebSocketConfiguration) -> Void = { _ in },
        events: WebSocketEvents,
        _ body: (Int) async throws -> Void
    ) async throws {
        var configuration = WebSocketConfiguration()
        configure(&configuration)
        let app = App()
        app.get("/ws", compat(WebSocketHandler(configuration: configuration, events: events)))
        try await withServer(app) { (port: Int) async throws in try await body(port) }
    }

    /// Opens a WebSocket without ever reading the 101 (or anything after it).
    private func hostileSocket(port: Int, path: String = "/ws", extra: [UInt8] = []) async throws -> HostilePeer {
        let peer = try HostilePeer(port: port)
        #expect(await peer.send(Array(TestWebSocket.handshakeRequest(path: path).utf8) + extra))
        return peer
    }

    private func frames(_ opcode: UInt8, payload: Int, count: Int) -> [UInt8] {
        let frame = clientFrame(opcode, Array(repeating: 0x61, count: payload))
        return Array((0..<count).map { _ in frame }.joined())
    }

    /// A well-behaved client gets its echo promptly.
    private func expectPromptEcho(port: Int) async throws {
        let socket = try await TestWebSocket.connect(port: port, path: "/ws")
        #expect(socket.response.status == 101)
        try await socket.send(text: "still here")
        #expect(try await socket.readFrame(timeout: .seconds(2)).text == "still here")
        await socket.client.close()
    }

    @Test func aPingFloodFromAPeerThatNeverReadsCostsOnePongPerRead() async throws {
        let recorder = EchoRecorder()
        try await self.serve({ $0.writeStallTimeout = .milliseconds(800) }, events: recorder.events()) { port in
            let peer = try await self.hostileSocket(port: port)
            let pings = self.frames(0x9, payload: 125, count: 500)
            let flood = Task { await peer.flood(pings, for: .milliseconds(1500), limit: Self.floodLimit) }
            try await Task.sleep(nanoseconds: 200_000_000)
            try await self.expectPromptEcho(port: port)
            let result = await flood.value
            // One pong per read, not per ping: what the server queued for this peer stays
            // within the socket buffers (one pong per ping queued as much as was sent).
            let queued = await peer.drain()
            #expect(queued < 8 * 1024 * 1024, "\(queued) bytes of pongs queued for \(result)")
            #expect(recorder.reasons.withLockedValue { $0.count } == 1, "only the polite client has left")
        }
    }

    @Test func anEchoPeerThatNeverReadsIsBoundedAndDropped() async throws {
        let recorder = EchoRecorder()
        // The stall deadline is longer than the flood, so only stopped reads can bound it.
        try await self.serve({ $0.writeStallTimeout = .seconds(2) }, events: recorder.events()) { port in
            let peer = try await self.hostileSocket(port: port)
            let messages = self.frames(0x2, payload: 1024, count: 60)
            let flood = Task { await peer.flood(messages, for: .milliseconds(1500), limit: Self.floodLimit) }
            try await Task.sleep(nanoseconds: 200_000_000)
            try await self.expectPromptEcho(port: port)
            let result = await flood.value
            #expect(result.written < Self.floodBound, "the server kept reading messages it could not echo: \(result)")
            let closed = result.closed ? true : await peer.waitForClose(timeout: .seconds(5)) != nil
            #expect(closed)
            #expect(try await recorder.waitForReasons(2).contains(.writeTimeout))
        }
    }

    @Test func aPeerThatReadsGetsEveryPongInOrder() async throws {
        try await self.serve(events: EchoRecorder().events()) { port in
            let socket = try await TestWebSocket.connect(port: port, path: "/ws")
            // A ping between two fragments: its pong comes before the message's echo (Autobahn 5.6).
            try await socket.client.send(
                clientFrame(0x9, [1]) + clientFrame(0x9, [2]) + clientFrame(0x1, Array("hel".utf8), fin: false)
                    + clientFrame(0x9, [3]) + clientFrame(0x0, Array("lo".utf8)))
            var frames: [ServerFrame] = []
            for _ in 0..<4 { frames.append(try await socket.readFrame()) }
            #expect(frames.map(\.opcode) == [0xA, 0xA, 0xA, 0x1])
            #expect(frames.map(\.payload) == [[1], [2], [3], Array("hello".utf8)])
        }
    }

    @Test func aProtocolErrorFromAPeerThatNeverReadsEndsWithinTheCloseDeadline() async throws {
        let recorder = EchoRecorder()
        var events = recorder.events()
        let onOpen = events.onOpen
        events.onOpen = { connection in
            onOpen(connection)
            // Far more than the socket buffers take: the close frame would wait behind this.
            for _ in 0..<128 { connection.send(.binary(Array(repeating: 0x62, count: 64 * 1024))) }
        }
        try await self.serve({ $0.closeTimeout = .milliseconds(300); $0.writeStallTimeout = .seconds(60) }, events: events) { port in
            // RSV2 without an extension: 1002, sent right behind the handshake.
            let peer = try await self.hostileSocket(port: port, extra: clientFrame(0x1, Array("x".utf8), rsv: 0x20))
            let closedAfter = await peer.waitForClose(timeout: .seconds(5))
            #expect(closedAfter != nil, "the connection stayed open behind an unwritable close frame")
            let reasons = try await recorder.waitForReasons(1)
            guard case .protocolViolation(let code, _) = reasons[0] else {
                Issue.record("reason \(reasons[0])")
                return
            }
            #expect(code == 1002)
        }
    }

    @Test func aCloseWeStartEndsWithinTheCloseDeadlineWhenThePeerNeverReads() async throws {
        let recorder = EchoRecorder()
        var events = recorder.events()
        let onOpen = events.onOpen
        events.onOpen = { connection in
            onOpen(connection)
            for _ in 0..<128 { connection.send(.binary(Array(repeating: 0x62, count: 64 * 1024))) }
            connection.close(code: 1000, reason: "bye")
        }
        try await self.serve({ $0.closeTimeout = .milliseconds(300); $0.writeStallTimeout = .seconds(60) }, events: events) { port in
            let peer = try await self.hostileSocket(port: port)
            #expect(await peer.waitForClose(timeout: .seconds(5)) != nil)
            #expect(try await recorder.waitForReasons(1) == [.serverClosed(code: 1000, reason: "bye")])
        }
    }

    @Test func aHandshakeCarryingABodyIsRefused() async throws {
        try await self.serve(events: EchoRecorder().events()) { port in
            let client = try await RawClient.connect(port: port)
            let head = TestWebSocket.handshakeRequest(path: "/ws", extraHeaders: ["Content-Length: 5"])
            try await client.send(head + "hello")
            let response = try await client.readResponse()
            #expect(response.status == 400)
            #expect(response.text.contains("no body"))
        }
    }

    // MARK: Live

    @Test func aSilentLiveClientIsDroppedByTheHeartbeat() async throws {
        #expect(Live.Options().heartbeatInterval == .seconds(25), "dead peers are detected by default")
        try await withLiveServer({ $0.heartbeatInterval = .milliseconds(200) }) { server, log, port in
            let peer = try await self.hostileSocket(port: port, path: "/ws?user=mute")
            #expect(await peer.waitForClose(timeout: .seconds(3)) != nil)
            #expect(try await log.waitFor(closes: 1)[0].error == .heartbeatTimeout)
            #expect(server.sessionCount == 0)
        }
    }

    @Test func aLiveClientThatNeverReadsIsDroppedAsAStalledWriter() async throws {
        try await withLiveServer({ $0.writeStallTimeout = .milliseconds(500); $0.queueSize = 100_000; $0.compression = false }) { server, log, port in
            let peer = try await self.hostileSocket(port: port, path: "/ws?user=mute")
            let session = try await log.waitFor(sessions: 1)[0]
            server.subscribe(session, "news")
            let payload = Data("\"\(String(repeating: "n", count: 16 * 1024))\"".utf8)
            for _ in 0..<1000 { server.publish("news", payload) }
            #expect(await peer.waitForClose(timeout: .seconds(5)) != nil)
            #expect(try await log.waitFor(closes: 1)[0].error == .writeTimeout)
        }
    }

    @Test func subscriptionsPastTheCapAreRefusedWithAnError() async throws {
        try await withLiveServer({ $0.maxTopicsPerSession = 2 }) { server, log, port in
            let socket = try await TestWebSocket.live(port: port)
            let session = try await log.waitFor(sessions: 1)[0]
            #expect(server.subscribe(session, "a"))
            #expect(server.subscribe(session, "b"))
            #expect(server.subscribe(session, "a"), "already subscribed is not a new topic")
            #expect(!server.subscribe(session, "c"))
            #expect(try await socket.readText() == #"{"topic":"error","data":"too many subscriptions"}"#)
            #expect(session.topics == ["a", "b"])
            #expect(server.subscriberCount("c") == 0)
            server.unsubscribe(session, "a")
            #expect(server.subscribe(session, "c"))
            #expect(!server.subscribe(session, ""), "an empty topic is a no-op")
        }
    }

    @Test func goDefaultsForZeroAndNegativeLimits() {
        for (queue, read) in [(0, 0), (-5, -1)] {
            let core = ServerCore(options: Live.Options(queueSize: queue, readLimit: read))
            #expect(core.webSocketConfiguration.maxQueuedMessages == 256)
            #expect(core.webSocketConfiguration.maxMessageSize == 4 * 1024 * 1024)
        }
    }

    @Test func eachWindowSizeIsCompressedOncePerPublishAndEverySubscriberCanInflate() async throws {
        try await withLiveServer { server, log, port in
            var sockets: [TestWebSocket] = []
            for bits in [9, 12, 15, 9, 12, 15] {
                let offer = bits == 15 ? "permessage-deflate" : "permessage-deflate; server_max_window_bits=\(bits)"
                let socket = try await TestWebSocket.live(port: port, user: "u\(sockets.count)", headers: ["Sec-WebSocket-Extensions: \(offer)"])
                #expect(socket.response.header("sec-websocket-extensions")?.contains(bits == 15 ? "permessage-deflate" : "server_max_window_bits=\(bits)") == true)
                sockets.append(socket)
            }
            for session in try await log.waitFor(sessions: 6) { server.subscribe(session, "room") }
            #expect(Set(server.core.registry.snapshot("room")?.sharedWindows ?? []) == [9, 12, 15], "one compression per window size")
            let text = String(repeating: "compress me ", count: 200)
            server.publish("room", Data("\"\(text)\"".utf8))
            for socket in sockets {
                let frame = try await socket.readFrame()
                #expect(frame.rsv1)
                let inflated = try MessageInflater().inflate(ByteBuffer(bytes: frame.payload))
                #expect(String(buffer: inflated) == #"{"topic":"room","data":"\#(text)"}"#)
            }
        }
    }
}

@Suite(.timeLimit(.minutes(2))) struct SameOriginTests {
    @Test func schemeHostAndPortMustAllMatch() {
        let cases: [(String, String?, Bool)] = [
            ("http://127.0.0.1", "127.0.0.1", true),
            ("http://example.com", "example.com:80", true),
            ("http://EXAMPLE.com:8080", "example.com:8080", true),
            ("http://[::1]:8080", "[::1]:8080", true),
            ("https://example.com", "example.com", false),  // an https page is another origin than ws://
            ("https://example.com:8080", "example.com:8080", false),
            ("http://example.com:8080", "example.com", false),
            ("http://example.com", "example.com.evil.test", false),
            ("null", "example.com", false),
            ("http://example.com", nil, false),
            ("http://example.com", "example.com:x", false),
        ]
        for (origin, host, same) in cases {
            #expect(Live.Options.isSameOrigin(origin, host: host) == same, "\(origin) vs \(host ?? "no Host")")
        }
    }
}
