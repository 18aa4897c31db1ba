import Foundation
import Mizu
@testable import MizuLive
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Testing

/// What one client can make a session hold, in bytes: topic names, kept headers, messages
/// waiting for a slow hook.
@Suite(.timeLimit(.minutes(10))) struct HostileLiveBoundsTests {
    @Test func topicsLongerThanTheLimitAreRefusedWithAnError() async throws {
        #expect(Live.Options().maxTopicLength == 255)
        try await withLiveServer { server, log, port in
            let socket = try await TestWebSocket.live(port: port)
            let session = try await log.waitFor(sessions: 1)[0]
            let longest = "chat:" + String(repeating: "r", count: 250)
            #expect(server.subscribe(session, longest))
            #expect(!server.subscribe(session, longest + "r"))
            #expect(try await socket.readText() == #"{"topic":"error","data":"topic too long"}"#)
            // 63 KB names, as an attacker sent: refused before anything is stored.
            #expect(!server.subscribe(session, "chat:" + String(repeating: "x", count: 63_000)))
            #expect(try await socket.readText() == #"{"topic":"error","data":"topic too long"}"#)
            #expect(session.topics == [longest] && server.topicCount == 1)
            // Counted in bytes, not characters.
            #expect(!server.subscribe(session, String(repeating: "é", count: 128)))
            try await socket.close()
        }
    }

    @Test func oneClientsSessionsShareOneSubscriptionBudget() async throws {
        #expect(Live.Options().maxTopicsPerClient == 100_000)
        try await withLiveServer({ $0.maxTopicsPerClient = 3 }) { server, log, port in
            let first = try await TestWebSocket.live(port: port, user: "a")
            let second = try await TestWebSocket.live(port: port, user: "b")
            let sessions = [try await log.session(of: "a"), try await log.session(of: "b")]
            #expect(server.subscribe(sessions[0], "t1") && server.subscribe(sessions[0], "t2"))
            #expect(server.subscribe(sessions[1], "t3"))
            #expect(!server.subscribe(sessions[1], "t4"), "the client's third subscription was its last")
            #expect(try await second.readText() == #"{"topic":"error","data":"too many subscriptions"}"#)
            server.unsubscribe(sessions[0], "t1")
            #expect(server.subscribe(sessions[1], "t4"), "an unsubscribe gives its place back")
            try await first.close()
            _ = try await log.waitFor(closes: 1)
            #expect(server.subscribe(sessions[1], "t5"), "so does a closed session's")
            #expect(server.core.limiter.subscriptions(of: ClientAddressKey(sessions[1].request.remoteAddress)) == 3)
            try await second.close()
            _ = try await log.waitFor(closes: 2)
        }
    }

    @Test func aSessionKeepsItsHandshakeHeadersOnlyUpToTheBudget() async throws {
        try await withLiveServer { server, log, port in
            // ~15 KB of junk headers, as an attacker sent with each of 1,000 idle sessions,
            // then a small header the application may want.
            let junk = (0..<15).map { "X-Junk-\($0): \(String(repeating: "j", count: 1_000))" }
            let socket = try await TestWebSocket.live(port: port, headers: junk + ["X-Client: app/1.0"])
            let session = try await log.waitFor(sessions: 1)[0]
            let kept = session.request.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }
            #expect(kept <= 4096, "kept \(kept) bytes of headers")
            #expect(session.request.header("x-client") == "app/1.0", "a small header after the junk still fits")
            #expect(session.request.header("host") != nil)
            #expect(session.request.header("sec-websocket-key") == nil)
            try await socket.close()
        }
        // The budget is the application's to choose.
        let request = Request(method: .GET, uri: "/ws", headers: HTTPHeaders([("A", "1234"), ("B", "5678"), ("C", "9")]))
        #expect(LiveHTTPHandler.kept(request, headerBytes: 7).headers.map(\.name) == ["A", "C"])
        #expect(LiveHTTPHandler.kept(request, headerBytes: 0).headers.isEmpty)
    }

    @Test func messagesWaitingForASlowHookAreBoundedInBytes() async throws {
        let hookMayGo = Gate()
        defer { hookMayGo.open() }
        let received = NIOLockedValueBox(0)
        try await withLiveServer({ options in
            options.readLimit = 64 * 1024
            options.onMessage = { _, _, _, _ in
                await hookMayGo.wait()
                received.withLockedValue { $0 += 1 }
            }
        }) { _, log, port in
            let socket = try await TestWebSocket.live(port: port)
            let session = try await log.waitFor(sessions: 1)[0]
            // 70 messages of 60 KB (4.2 MB) against a hook that takes none of them yet, sent from a
            // task: once the server stops reading, the kernel's buffers fill and the sends wait.
            let padding = String(repeating: "p", count: 60_000)
            let frames = (0..<70).flatMap { index in
                clientFrame(0x1, Array(#"{"topic":"presence","data":{"n":\#(index),"pad":"\#(padding)"}}"#.utf8))
            }
            let sending = Task { try await socket.client.send(frames) }
            // The server stops reading past its byte mark: what waits stays near it (one read's
            // worth of frames may already be parsed when reading pauses), not 64 messages' worth.
            _ = try await eventually("the byte mark to be reached") { session.inboxPeakBytes >= Live.Session.inboxHighWaterBytes ? true : nil }
            // What NIO already read when reading paused comes on top: up to 4 reads of 64 KiB in
            // one readable event (its maxMessagesPerRead), plus the message being assembled.
            let bound = Live.Session.inboxHighWaterBytes + 4 * 64 * 1024 + 64 * 1024
            #expect(session.inboxPeakBytes <= bound, "\(session.inboxPeakBytes) bytes waited")
            hookMayGo.open()
            try await sending.value
            _ = try await eventually("every message, once reading resumed") { received.withLockedValue { $0 } == 70 ? true : nil }
            #expect(session.inboxPeakBytes <= bound, "\(session.inboxPeakBytes) bytes waited")
            try await socket.close()
        }
    }
}
