import Foundation
import Mizu
import MizuCompat
@testable import MizuWebSocket
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// WebSocket peers that attack the server's memory and deadlines, one at a time, over real
/// sockets. A flood's accepted bytes bound what the server holds (see ``HostilePeer``).
@Suite(.timeLimit(.minutes(10))) struct HostileWebSocketTests {
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

    @Test func aPeerLeavingMoreBytesUnreadThanTheBoundIsASlowConsumer() async throws {
        // No bound on the count: 64 KiB messages to a peer that reads nothing fill the
        // kernel's buffers, then ours; past 1 MiB held it is closed, not left to hold what a
        // count of large messages allows (the count was the only bound), and the others are
        // served meanwhile.
        let recorder = EchoRecorder()
        try await self.serve({ $0.maxQueuedBytes = 1 << 20 }, events: recorder.events()) { port in
            let peer = try await self.hostileSocket(port: port)
            let connection = try await recorder.waitForConnection(1)
            let message = WebSocketMessage.binary([UInt8](repeating: 7, count: 64 * 1024))
            var sent = 0
            while recorder.reasons.withLockedValue({ $0.isEmpty }), sent < 2_000 {  // 128 MiB at most
                try await connection.eventLoop.submit { connection.handler?.send(message) }.get()  // one per tick, each flushed
                sent += 1
            }
            #expect(try await recorder.waitForReasons(1) == [.sendQueueFull])
            #expect(sent < 200, "closed after \(sent) messages of 64 KiB: the kernel's buffers, then 1 MiB")
            try await self.expectPromptEcho(port: port)
            _ = peer
        }
    }

    @Test func oneClientsConnectionsTogetherHoldAtMostTheClientBound() async throws {
        // No bound per connection: only the sum over the client's connections can close one.
        // Four peers that read nothing, 64 KiB to each in turn: without the client bound they
        // hold 64 MiB each by the end (or are dropped much later by the stall deadline).
        let recorder = EchoRecorder()
        var configuration = WebSocketConfiguration()
        configuration.maxQueuedBytesPerClient = 1 << 20
        let handler = WebSocketHandler(configuration: configuration, events: recorder.events())
        let ledger = try #require(handler.outputLedger)
        let app = App()
        app.get("/ws", compat(handler))
        try await withServer(app) { (port: Int) async throws in
            var peers: [HostilePeer] = []
            var connections: [WebSocketConnection] = []
            for number in 1...4 {
                peers.append(try await self.hostileSocket(port: port))
                connections.append(try await recorder.waitForConnection(number))
            }
            let message = WebSocketMessage.binary([UInt8](repeating: 7, count: 64 * 1024))
            var sent = 0
            while recorder.reasons.withLockedValue({ $0.isEmpty }), sent < 4_000 {
                let connection = connections[sent % connections.count]
                try await connection.eventLoop.submit { connection.handler?.send(message) }.get()  // each flushed
                sent += 1
            }
            #expect(try await recorder.waitForReasons(1).allSatisfy { $0 == .sendQueueFull })
            #expect(sent < 4 * 200, "closed after \(sent) messages of 64 KiB: the kernel's buffers of four, then 1 MiB")
            #expect(ledger.held(by: ClientAddressKey(connections[0].remoteAddress)) <= 1 << 20)
            // The same client's connection that reads is served: it holds nothing.
            try await self.expectPromptEcho(port: port)
            // Everyone gone, nothing is left counted.
            peers.removeAll()
            _ = try await recorder.waitForReasons(5)
            #expect(try await eventually("the ledger to empty") { ledger.clientCount == 0 ? true : nil })
        }
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
            // The polite client left; the flooder, if gone already, only for its unread pongs.
            // Either may be told first (on a loaded machine the flooder's stall deadline can
            // pass before the polite client's close is read): wait for the polite one.
            let reasons = try await eventually("the polite client's close") {
                recorder.reasons.withLockedValue { $0.contains(.connectionLost) ? $0 : nil }
            }
            #expect(reasons.allSatisfy { $0 == .connectionLost || $0 == .writeTimeout }, "\(reasons)")
        }
    }

    @Test func anEchoPeerThatNeverReadsIsBoundedAndDropped() async throws {
        let recorder = EchoRecorder()
        // The bytes that get through are bounded by stopped reads, not by the stall deadline.
        try await self.serve({ $0.writeStallTimeout = .seconds(2) }, events: recorder.events()) { port in
            let peer = try await self.hostileSocket(port: port)
            let messages = self.frames(0x2, payload: 1024, count: 60)
            // Until the server closes it (or a long limit): what the kernel buffers between the two
            // varies with the machine and its load, and a flood it absorbs whole leaves the
            // server nothing to see; past them, stopped reads bound what gets through.
            let flood = Task { await peer.flood(messages, for: Patience.scaled(.seconds(10)), limit: Self.floodLimit) }
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
}
