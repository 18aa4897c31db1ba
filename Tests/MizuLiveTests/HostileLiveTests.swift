import Foundation
import Mizu
import MizuCompat
@testable import MizuLive
@_spi(Benchmarking) import MizuWebSocket
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Live-level hostile clients: silent, never reading, subscribing without end.
@Suite(.timeLimit(.minutes(10))) struct HostileLiveTests {
    /// Opens a WebSocket without ever reading the 101 (or anything after it).
    private func hostileSocket(port: Int, path: String = "/ws", extra: [UInt8] = []) async throws -> HostilePeer {
        let peer = try HostilePeer(port: port)
        #expect(await peer.send(Array(TestWebSocket.handshakeRequest(path: path).utf8) + extra))
        return peer
    }

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
        // Neither queue bound in the way (each has its own test): the stall deadline alone.
        try await withLiveServer({
            $0.writeStallTimeout = .milliseconds(500); $0.queueSize = 100_000; $0.queueBytes = 1 << 30; $0.queueBytesPerClient = 1 << 30
            $0.compression = false
        }) { server, log, port in
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

    @Test func oneClientsMessagesArePacedAcrossItsSessionsAndAnotherClientsAreNot() async throws {
        #expect(Live.Options().messagesPerSecond == 10_000, "paced by default")
        // One message an hour after a burst of two: what is handled is decided by the budget
        // alone, never by how fast the machine is (the rate's schedule itself is checked on an
        // injected clock by the pacer's unit test).
        try await withLiveServer({ $0.messagesPerSecond = 1.0 / 3600; $0.messageBurst = 2 }) { _, log, port in
            let first = try await TestWebSocket.live(port: port, user: "a1")
            let second = try await TestWebSocket.live(port: port, user: "a2")
            let other = try await TestWebSocket.connect(port: port, path: "/ws?user=b", from: "127.0.0.2")
            #expect(other.response.status == 101)
            _ = try await log.waitFor(sessions: 3)
            for socket in [first, second] {
                for index in 0..<3 { try await socket.send(text: #"{"topic":"a","data":\#(index)}"#) }
            }
            try await other.send(text: #"{"topic":"b","data":0}"#)
            // The other client's message does not wait behind the first client's debt, and the
            // first client has its burst of two...
            _ = try await eventually("the other client's message and the first one's burst") {
                log.messages.withLockedValue { messages in
                    messages.contains { $0.topic == "b" } && messages.filter { $0.topic == "a" }.count >= 2 ? true : nil
                }
            }
            // ...and no more, across both its sessions: the other client's second message, sent
            // after all six, is handled while they still wait.
            try await other.send(text: #"{"topic":"b","data":1}"#)
            _ = try await eventually("the other client's second message") {
                log.messages.withLockedValue { messages in messages.filter { $0.topic == "b" }.count == 2 ? true : nil }
            }
            #expect(log.messages.withLockedValue { messages in messages.filter { $0.topic == "a" }.count } == 2)
        }
    }

    @Test func aSessionThatClosesWhileItsMessagesWaitDropsThemAndClosesAtOnce() async throws {
        // One message an hour: the second would be handled an hour after the first.
        try await withLiveServer({ $0.messagesPerSecond = 1.0 / 3600; $0.messageBurst = 1 }) { server, log, port in
            let socket = try await TestWebSocket.live(port: port, user: "a")
            _ = try await log.waitFor(sessions: 1)
            for index in 0..<3 { try await socket.send(text: #"{"topic":"a","data":\#(index)}"#) }
            _ = try await log.waitFor(messages: 1)
            try await socket.close()
            _ = try await log.waitFor(closes: 1)
            // Order, not speed: onClose came before any waiting message was handled.
            #expect(log.messages.withLockedValue { $0.count } == 1, "a closed session's waiting messages are dropped")
            #expect(server.sessionCount == 0)
        }
    }

    @Test func goDefaultsForZeroAndNegativeLimits() {
        for (queue, read) in [(0, 0), (-5, -1)] {
            let core = ServerCore(options: Live.Options(queueSize: queue, readLimit: read))
            #expect(core.webSocketConfiguration.maxQueuedMessages == 256)
            #expect(core.webSocketConfiguration.maxMessageSize == 4 * 1024 * 1024)
        }
        var options = Live.Options()
        #expect(ServerCore(options: options).upgrader.outputLedger?.limit == 64 * 1024 * 1024, "one client's sessions are bounded by default")
        options.queueBytesPerClient = 0
        #expect(ServerCore(options: options).upgrader.outputLedger?.limit == 64 * 1024 * 1024)
        options.queueBytesPerClient = 1 << 20
        #expect(ServerCore(options: options).upgrader.outputLedger?.limit == 1 << 20)
        for rate in [0, -1, .nan] {
            options.messagesPerSecond = rate
            options.messageBurst = Int(rate.isNaN ? 0 : rate)
            let limits = ServerCore(options: options).limiter.limits
            #expect(limits.messagesPerSecond == 10_000 && limits.messageBurst == 20_000)
        }
    }

    @Test func oneClientsSessionsTogetherHoldAtMostQueueBytesPerClient() async throws {
        // Per session a bound out of reach (64 MiB; at most 64 MiB is published): only the sum
        // over the client's sessions can close one, and sessions of the client that read are
        // not closed for it.
        try await withLiveServer({
            $0.queueSize = 100_000; $0.queueBytes = 64 << 20; $0.queueBytesPerClient = 1 << 20
            $0.compression = false; $0.writeStallTimeout = .seconds(60)
        }) { server, log, port in
            var peers: [HostilePeer] = []
            for index in 0..<4 { peers.append(try await self.hostileSocket(port: port, path: "/ws?user=mute\(index)")) }
            let reader = try await TestWebSocket.live(port: port, user: "reader")
            let sessions = try await log.waitFor(sessions: 5)
            for session in sessions { server.subscribe(session, "news") }
            let payload = Data("\"\(String(repeating: "n", count: 64 * 1024))\"".utf8)
            var published = 0
            while server.sessionCount == 5, published < 1_000 {
                server.publish("news", payload)
                published += 1
                _ = try await reader.readText()  // one publish at a time: each one's flush is seen
            }
            let closes = try await log.waitFor(closes: 1)
            #expect(closes[0].error == .queueFull)
            #expect(closes[0].session != (try await log.session(of: "reader")).id, "the reader holds nothing")
            #expect(published < 4 * 200, "closed after \(published) messages of 64 KiB to each")
            let ledger = try #require(server.core.upgrader.outputLedger)
            peers.removeAll()
            _ = try await log.waitFor(closes: 4)
            #expect(server.sessionCount == 1, "the reader is still served")
            #expect(try await eventually("the ledger to empty") { ledger.clientCount == 0 ? true : nil })
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

@Suite(.timeLimit(.minutes(10))) struct SameOriginTests {
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
