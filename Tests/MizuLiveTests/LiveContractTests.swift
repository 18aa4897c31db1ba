import Foundation
import Mizu
import MizuCompat
@testable import MizuLive
@testable import MizuWebSocket
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Behaviours a mutation run showed unguarded: each test fails if its behaviour breaks.
@Suite(.timeLimit(.minutes(10))) struct LiveContractTests {
    /// Text whose second half repeats the first 600 bytes back: a 512-byte window cannot reach it.
    private static let farRepeat: String = {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let half = (0..<600).map { _ -> Character in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Character(UnicodeScalar(UInt8(97 + Int(state >> 59) % 26)))
        }
        return String(half) + String(half)
    }()

    private func inflate(_ payload: [UInt8], windowBits: Int) -> String? {
        var output = ByteBuffer()
        do {
            try Inflater(windowBits: windowBits).inflate(ByteBuffer(bytes: payload + [0x00, 0x00, 0xFF, 0xFF]), into: &output, limit: 1 << 20)
        } catch {
            return nil
        }
        return String(buffer: output)
    }

    @Test func anEmptyOriginListAllowsOnlyThePagesOwnOrigin() async throws {
        try await withLiveServer { _, _, port in
            let foreign = try await TestWebSocket.live(port: port, headers: ["Origin: http://evil.test"])
            #expect(foreign.response.status == 403)
            let own = try await TestWebSocket.live(port: port, headers: ["Origin: http://127.0.0.1"])
            #expect(own.response.status == 101)
        }
    }

    @Test func theNegotiatedServerWindowIsTheOneCompressedWith() async throws {
        try await withLiveServer { server, log, port in
            let socket = try await TestWebSocket.live(port: port, headers: ["Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9"])
            server.subscribe(try await log.waitFor(sessions: 1)[0], "t")
            server.publish("t", Data("\"\(Self.farRepeat)\"".utf8))
            let frame = try await socket.readFrame()
            #expect(frame.rsv1)
            #expect(self.inflate(frame.payload, windowBits: 9) == #"{"topic":"t","data":"\#(Self.farRepeat)"}"#,
                    "a client that allowed a 512-byte window can inflate it")
        }
    }

    @Test func noContextIsKeptFromOneMessageToTheNext() async throws {
        try await withLiveServer { server, log, port in
            let socket = try await TestWebSocket.live(port: port, headers: ["Sec-WebSocket-Extensions: permessage-deflate"])
            let session = try await log.waitFor(sessions: 1)[0]
            server.subscribe(session, "t")
            let data = Data("\"\(Self.farRepeat)\"".utf8)
            server.publish("t", data)
            server.publish("t", data)
            try session.send(Live.Message(topic: "t", data: data))
            for _ in 0..<3 {
                let frame = try await socket.readFrame()
                #expect(self.inflate(frame.payload, windowBits: 15) == #"{"topic":"t","data":"\#(Self.farRepeat)"}"#,
                        "each message inflates on its own (server_no_context_takeover)")
            }
        }
    }

    @Test func sendThrowsQueueFullWhenTheQueueIsFull() async throws {
        try await withLiveServer({ $0.queueSize = 4 }) { _, log, port in
            let socket = try await TestWebSocket.live(port: port)
            let session = try await log.waitFor(sessions: 1)[0]
            // A peer that takes nothing: it stops reading, and a 6 MB message fills the
            // kernel's buffers (the socket is no longer writable). Then five sends within one
            // event-loop tick: the queue counts what the socket has not taken.
            try await socket.client.stopReading()
            try session.send(Live.Message(topic: "t", data: Data(("\"" + String(repeating: "x", count: 6_000_000) + "\"").utf8)))
            let thrown = try await session.connection.eventLoop.submit { () -> Live.Error? in
                for index in 0..<5 {
                    do throws(Live.Error) { try session.send(Live.Message(topic: "t", data: Data("\(index)".utf8))) } catch { return error }
                }
                return nil
            }.get()
            #expect(thrown == .queueFull)
            #expect(try await log.waitFor(closes: 1)[0].error == .queueFull)
            _ = try await socket.client.waitForClose()
        }
    }

    @Test func aPeerGoingAwayWith1001IsACleanClose() async throws {
        try await withLiveServer { _, log, port in
            let socket = try await TestWebSocket.live(port: port)
            _ = try await log.waitFor(sessions: 1)
            try await socket.send(0x8, [0x03, 0xE9])
            #expect(try await socket.expectClose().closeCode == 1001)
            #expect(try await log.waitFor(closes: 1)[0].error == nil)
        }
    }

    @Test func aMessageExactlyAtTheReadLimitIsAccepted() async throws {
        try await withLiveServer({ $0.readLimit = 1024 }) { _, log, port in
            let socket = try await TestWebSocket.live(port: port)
            let frame = #"{"topic":"t","data":""#
            let exact = frame + String(repeating: "x", count: 1024 - frame.utf8.count - 2) + #""}"#
            #expect(exact.utf8.count == 1024)
            try await socket.send(text: exact)
            #expect(try await log.waitFor(messages: 1)[0].topic == "t")
            try await socket.send(text: exact + " ")
            #expect(try await socket.expectClose().closeCode == 1009)
        }
    }

    @Test func aPublishReachesSubscribersOnEveryEventLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 4)
        let log = HookLog()
        let box = NIOLockedValueBox<Live.Server?>(nil)
        let server = Live.Server(loggingOptions(log, server: box))
        box.withLockedValue { $0 = server }
        // One listening socket hands connections to the loops in turn, so 12 sessions cover
        // all 4 (a socket per loop spreads them by a hash: one loop is left out 1 time in 8).
        var configuration = HTTPServerConfiguration()
        configuration.listenOnEveryEventLoop = false
        let http = HTTPServer(handler: server.handler(), configuration: configuration, eventLoopGroup: group)
        let port = try await http.start(host: "127.0.0.1", port: 0).port!
        do {
            var sockets: [TestWebSocket] = []
            for index in 0..<12 { sockets.append(try await TestWebSocket.live(port: port, user: "u\(index)")) }
            let sessions = try await log.waitFor(sessions: 12)
            #expect(Set(sessions.map { ObjectIdentifier($0.connection.eventLoop) }).count == 4, "accepted round robin")
            for session in sessions { server.subscribe(session, "all") }
            server.publish("all", Data("1".utf8))
            for socket in sockets { #expect(try await socket.readText() == #"{"topic":"all","data":1}"#) }
        }
        await http.shutdown(gracePeriod: .milliseconds(200))
        try await group.shutdownGracefully()
    }

    @Test func onOpenRunsBeforeTheFirstMessage() async throws {
        let order = NIOLockedValueBox<[String]>([])
        try await withLiveServer({ options in
            options.onOpen = { _, _ in
                try? await Task.sleep(nanoseconds: 50_000_000)
                order.withLockedValue { $0.append("open") }
            }
            options.onMessage = { _, _, topic, _ in order.withLockedValue { $0.append(topic) } }
        }) { _, _, port in
            let socket = try await TestWebSocket.live(port: port)
            try await socket.send(text: #"{"topic":"first"}"#)
            _ = try await eventually("both hooks") { order.withLockedValue { $0.count == 2 ? $0 : nil } }
            #expect(order.withLockedValue { $0 } == ["open", "first"])
        }
    }

    @Test func anApplicationThatIsBehindStopsTheReading() async throws {
        let gate = NIOLockedValueBox(false)
        try await withLiveServer({ options in
            options.onMessage = { _, _, _, _ in
                while !gate.withLockedValue({ $0 }) { try? await Task.sleep(nanoseconds: 5_000_000) }
            }
        }) { _, log, port in
            let peer = try HostilePeer(port: port)
            #expect(await peer.send(Array(TestWebSocket.handshakeRequest(path: "/ws?user=busy").utf8)))
            let message = clientFrame(0x1, Array(#"{"topic":"t","data":"\#(String(repeating: "y", count: 1000))"}"#.utf8))
            let flood = await peer.flood(Array((0..<64).map { _ in message }.joined()), for: .milliseconds(1500), limit: 512 << 20)
            gate.withLockedValue { $0 = true }
            // Reading resumed once the hooks caught up; without the pause the server would have
            // read (and queued for the hook) everything the flood could send.
            #expect(flood.written < 20 * 1024 * 1024, "\(flood)")
        }
    }
}

@Suite struct LiveCloseReasonLoggingTests {
    @Test func aPeersReasonIsEscapedInLiveErrors() {
        let forged = "bye\nERROR root shell opened"
        #expect(!"\(Live.Error.closedByPeer(code: 4000, reason: forged))".contains("\n"))
        #expect(!"\(Live.Error.protocolError(code: 1002, reason: forged))".contains("\n"))
    }
}
