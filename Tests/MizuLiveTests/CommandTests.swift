import Foundation
@_spi(Benchmarking) @testable import MizuLive
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// The standard command set without sockets: a session opened as a handshaken one is, fed
/// frames, its replies read off the channel. Every reply's shape, every refusal's code, and
/// every client number at its extremes.
@Suite struct CommandTests {
    /// Who may do what in these tests: read anything but `secret` and the server's own
    /// `online`; publish on `room:*` only.
    private static func options(_ configure: (inout Live.Commands) -> Void = { _ in }) -> Live.Options {
        var commands = Live.Commands(
            canSubscribe: { _, request in request.topic != "secret" && request.topic != "online" },
            canPublish: { _, topic, _ in topic.hasPrefix("room:") })
        configure(&commands)
        var options = Live.Options()
        options.commands = commands
        options.history = { $0.hasPrefix("h") ? Live.HistoryPolicy(size: 100, ttl: .seconds(60)) : nil }
        options.presence = Live.PresenceOptions(topics: { $0.hasPrefix("p") })
        return options
    }

    /// Sends `frames`, then returns the next `count` data frames the session is sent.
    private func exchange(_ harness: SessionLoopHarness, _ frames: [String], expecting count: Int) async throws -> [[String: Any]] {
        for frame in frames { try await harness.receive(frame) }
        var all: [[String: Any]] = []
        let deadline = NIODeadline.now() + Patience.scaled(.seconds(5))
        while all.count < count && NIODeadline.now() < deadline {
            all += try await harness.sentObjects()
            if all.count < count { try await Task.sleep(for: .milliseconds(1)) }
        }
        #expect(all.count == count, "\(all)")
        return all
    }

    private func data(_ object: [String: Any]) -> [String: Any] { object["data"] as? [String: Any] ?? [:] }
    private func result(_ object: [String: Any]) -> [String: Any] { self.data(object)["result"] as? [String: Any] ?? [:] }
    private func errorCode(_ object: [String: Any]) -> String? { (self.data(object)["error"] as? [String: Any])?["code"] as? String }
    private func int(_ value: Any?) -> Int? { (value as? NSNumber)?.intValue }

    @Test func aSubscribeWithAnIdIsAnsweredBeforeItsReplayAndEchoesTheId() async throws {
        let harness = try await SessionLoopHarness(Self.options(), opening: true)
        for index in 1...3 { harness.server.publish("h", Data("\(index)".utf8)) }
        let sent = try await self.exchange(harness, [#"{"topic":"subscribe","data":{"topic":"h","history":2,"id":7}}"#], expecting: 3)
        #expect(sent[0]["topic"] as? String == "reply" && self.int(self.data(sent[0])["id"]) == 7)
        #expect(self.result(sent[0])["topic"] as? String == "h" && self.result(sent[0])["recovered"] as? Bool == false)
        #expect(self.int(self.result(sent[0])["offset"]) == 3)
        #expect(sent.dropFirst().map { self.int($0["data"]) } == [2, 3], "the latest two, after the answer")
        let epoch = try #require(self.result(sent[0])["epoch"] as? String)

        // Recovery from a position, with a string id, on a topic the session has already.
        harness.server.publish("h", Data("4".utf8))
        _ = try await self.exchange(harness, [], expecting: 1)
        harness.server.publish("h", Data("5".utf8))
        _ = try await self.exchange(harness, [], expecting: 1)
        let recovered = try await self.exchange(
            harness, [#"{"topic":"subscribe","data":{"topic":"h","since":{"offset":3,"epoch":"\#(epoch)"},"id":"r-1"}}"#], expecting: 3)
        #expect(self.data(recovered[0])["id"] as? String == "r-1" && self.result(recovered[0])["recovered"] as? Bool == true)
        #expect(recovered.dropFirst().map { self.int($0["data"]) } == [4, 5], "everything after offset 3, again (the client re-synchronises)")
    }

    @Test func withoutAnIdSubscribeAnswersAsTheSeedsChatAppDid() async throws {
        let harness = try await SessionLoopHarness(Self.options(), opening: true)
        harness.server.publish("h", Data("1".utf8))
        let sent = try await self.exchange(harness, [
            #"{"topic":"subscribe","data":{"topic":"secret"}}"#,
            #"{"topic":"subscribe","data":{"topic":"h","history":5}}"#,
            #"{"topic":"subscribe","data":{"topic":"plain"}}"#,
            #"{"topic":"subscribe","data":{"topic":"h","since":{"offset":9007199254740992,"epoch":"e"}}}"#,
        ], expecting: 4)
        #expect(sent[0]["topic"] as? String == "error" && sent[0]["data"] as? String == "not allowed")
        #expect(sent[1]["topic"] as? String == "subscribed" && self.data(sent[1])["topic"] as? String == "h" && self.data(sent[1])["recovered"] as? Bool == false)
        #expect(self.int(sent[2]["data"]) == 1, "the history asked for")
        #expect(sent[3]["topic"] as? String == "error" && sent[3]["data"] as? String == "bad request", "no stream reaches 2^53")
        let session = try #require(harness.server.sessions.first)
        #expect(session.topics == ["h", "plain"], "a plain subscribe is not answered")
    }

    @Test func everyRefusalHasAStableCodeAndSaysWhetherToRetry() async throws {
        let harness = try await SessionLoopHarness(Self.options { _ in }, opening: true)
        let longTopic = String(repeating: "t", count: 256)
        let sent = try await self.exchange(harness, [
            #"{"topic":"subscribe","data":{"topic":"secret","id":1}}"#,
            #"{"topic":"subscribe","data":{"topic":"\#(longTopic)","id":2}}"#,
            #"{"topic":"subscribe","data":{"topic":5,"id":3}}"#,
            #"{"topic":"history","data":{"topic":"plain","id":4}}"#,
            #"{"topic":"presence","data":{"topic":"none","id":5}}"#,
            #"{"topic":"publish","data":{"topic":"elsewhere","data":1,"id":6}}"#,
            #"{"topic":"publish","data":{"topic":"room:a","id":7}}"#,
            // Reads are held to the topic length too (a topic becomes store keys).
            #"{"topic":"history","data":{"topic":"\#(longTopic)","id":8}}"#,
            #"{"topic":"presence","data":{"topic":"\#(longTopic)","id":9}}"#,
            #"{"topic":"subscribe","data":"not an object"}"#,
        ], expecting: 10)
        #expect(sent.prefix(9).map { self.int(self.data($0)["id"]) } == [1, 2, 3, 4, 5, 6, 7, 8, 9])
        #expect(sent.prefix(9).map { self.errorCode($0) } == [
            "not_allowed", "topic_too_long", "bad_request", "not_enabled", "not_enabled", "not_allowed", "bad_request", "topic_too_long", "topic_too_long",
        ])
        let error = try #require(self.data(sent[0])["error"] as? [String: Any])
        #expect(error["message"] as? String == "not allowed" && error["temporary"] as? Bool == false)
        #expect(sent[9]["topic"] as? String == "error" && sent[9]["data"] as? String == "bad request")
    }

    @Test func aTopicTooLongIsSaidBeforeTheApplicationsRule() async throws {
        // An application rule that refuses long names too (the ChatApp's) must not turn
        // topic_too_long, which the protocol names, into not_allowed.
        let harness = try await SessionLoopHarness(Self.options { $0.canSubscribe = { _, request in request.topic.utf8.count <= 10 } }, opening: true)
        let sent = try await self.exchange(harness, [#"{"topic":"subscribe","data":{"topic":"\#(String(repeating: "t", count: 256))","id":1}}"#], expecting: 1)
        #expect(self.errorCode(sent[0]) == "topic_too_long")
    }

    @Test func clientNumbersAtTheirExtremesAreRefusedNeverTrusted() async throws {
        let harness = try await SessionLoopHarness(Self.options(), opening: true)
        let frames = [
            #"{"topic":"history","data":{"topic":"h","id":9007199254740991}}"#,  // 2^53 - 1: echoed
            #"{"topic":"history","data":{"topic":"h","id":9007199254740992}}"#,  // 2^53: no id
            #"{"topic":"history","data":{"topic":"h","id":-1}}"#,
            #"{"topic":"history","data":{"topic":"h","id":1.5}}"#,
            #"{"topic":"history","data":{"topic":"h","id":"\#(String(repeating: "x", count: 65))"}}"#,
            #"{"topic":"history","data":{"topic":"h","limit":99999999999999999,"id":8}}"#,
            #"{"topic":"history","data":{"topic":"h","limit":-1,"id":9}}"#,
            #"{"topic":"history","data":{"topic":"h","limit":"5","id":10}}"#,
            #"{"topic":"history","data":{"topic":"h","since":{"offset":18446744073709551616,"epoch":"e"},"id":11}}"#,
            #"{"topic":"history","data":{"topic":"h","since":{"offset":-1,"epoch":"e"},"id":12}}"#,
            #"{"topic":"history","data":{"topic":"h","limit":null,"since":null,"id":13}}"#,
        ]
        let sent = try await self.exchange(harness, frames, expecting: frames.count)
        #expect(self.int(self.data(sent[0])["id"]) == 9_007_199_254_740_991 && self.result(sent[0])["topic"] as? String == "h")
        for (index, reply) in sent[1...4].enumerated() {
            #expect(self.data(reply)["id"] == nil && self.errorCode(reply) == "bad_request", "frame \(index + 1): an id it cannot echo")
        }
        #expect(sent[5...9].map { self.errorCode($0) } == Array(repeating: "bad_request", count: 5))
        #expect(self.int(self.data(sent[10])["id"]) == 13 && self.errorCode(sent[10]) == nil, "null is the member left out")
        #expect(harness.server.sessionCount == 1, "nothing closed the session")
    }

    @Test func historyAndPresenceReadsAreBoundedAndPacedByTheApplication() async throws {
        let reads = NIOLockedValueBox(0)
        let harness = try await SessionLoopHarness(Self.options {
            $0.maxHistory = 2
            $0.maxPresenceMembers = 1
            $0.willRead = { _ in reads.withLockedValue { $0 += 1 } }
        }, opening: true)
        for index in 1...5 { harness.server.publish("h", Data("\(index)".utf8)) }
        let sent = try await self.exchange(harness, [
            #"{"topic":"history","data":{"topic":"h","limit":100,"id":1}}"#,
            #"{"topic":"subscribe","data":{"topic":"p1"}}"#,
            #"{"topic":"presence","data":{"topic":"p1","id":2}}"#,
        ], expecting: 2)
        let publications = try #require(self.result(sent[0])["publications"] as? [[String: Any]])
        #expect(publications.map { self.int($0["data"]) } == [4, 5], "at most maxHistory, the latest")
        #expect(publications.map { self.int($0["offset"]) } == [4, 5] && self.int(self.result(sent[0])["offset"]) == 5)
        #expect(self.result(sent[0])["complete"] as? Bool == false)
        let members = try #require(self.result(sent[1])["members"] as? [[String: Any]])
        #expect(members.count == 1 && members[0]["session"] as? String == "s")
        #expect(self.result(sent[1])["truncated"] as? Bool == false)
        #expect(reads.withLockedValue { $0 } == 2, "one paced read per history or presence command; a plain subscribe reads nothing")
    }

    @Test func aSubscribeWhileTheApplicationsOwnRecoveryOfTheTopicRunsIsBusy() async throws {
        let harness = try await SessionLoopHarness(Self.options(), opening: true)
        try await harness.drive { harness.server.sessionCount == 1 }
        let session = try #require(harness.server.sessions.first)
        let gate = Gate()
        harness.server.core.recoveryTestHooks.withLockedValue { $0.beforeRead = { await gate.wait() } }
        let server = harness.server
        let recovery = Task { await server.subscribe(session, "h", recoverFrom: nil, latest: 1) }
        try await harness.drive { session.topics.contains("h") }
        let sent = try await self.exchange(harness, [
            #"{"topic":"subscribe","data":{"topic":"h","history":1,"id":9}}"#,
            #"{"topic":"subscribe","data":{"topic":"h","history":1}}"#,  // without an id: not told, as before
            #"{"topic":"history","data":{"topic":"h","id":10}}"#,
        ], expecting: 2)
        #expect(self.errorCode(sent[0]) == "busy" && (self.data(sent[0])["error"] as? [String: Any])?["temporary"] as? Bool == true)
        #expect(self.int(self.data(sent[1])["id"]) == 10, "the next reply is the history's")
        gate.open()
        #expect(await recovery.value.subscribed)
    }

    @Test func unsubscribeDropsOnlyWhatTheClientCouldHaveAskedFor() async throws {
        let harness = try await SessionLoopHarness(Self.options(), opening: true)
        try await harness.drive { harness.server.sessionCount == 1 }
        let session = try #require(harness.server.sessions.first)
        #expect(harness.server.subscribe(session, "online"))
        let sent = try await self.exchange(harness, [
            #"{"topic":"subscribe","data":{"topic":"a","id":1}}"#,
            #"{"topic":"unsubscribe","data":{"topic":"a","id":2}}"#,
            #"{"topic":"unsubscribe","data":{"topic":"online"}}"#,
            #"{"topic":"unsubscribe","data":{"topic":"online","id":3}}"#,
        ], expecting: 3)
        #expect(self.result(sent[1])["topic"] as? String == "a")
        #expect(self.errorCode(sent[2]) == "not_allowed" && self.int(self.data(sent[2])["id"]) == 3)
        #expect(session.topics == ["online"], "the server's own subscription stays")
    }

    @Test func publishGoesThroughTheApplicationsHookAndShape() async throws {
        let harness = try await SessionLoopHarness(Self.options {
            $0.publication = { session, _, data in Data(#"{"from":"\#(session.id)","data":"#.utf8) + data + Data("}".utf8) }
        }, opening: true)
        let sent = try await self.exchange(harness, [
            #"{"topic":"subscribe","data":{"topic":"room:a"}}"#,
            #"{"topic":"publish","data":{"topic":"room:a","data":{"text":"hi"},"id":1}}"#,
        ], expecting: 2)
        let delivered = sent.first { $0["topic"] as? String == "room:a" }
        #expect((delivered?["data"] as? [String: Any])?["from"] as? String == "s")
        #expect(sent.contains { self.int(self.data($0)["id"]) == 1 && self.result($0)["topic"] as? String == "room:a" })

        let broken = try await SessionLoopHarness(Self.options { $0.publication = { _, _, _ in Data("not json".utf8) } }, opening: true)
        let refused = try await self.exchange(broken, [#"{"topic":"publish","data":{"topic":"room:a","data":1,"id":2}}"#], expecting: 1)
        #expect(self.errorCode(refused[0]) == "bad_request", "the application's shape must be JSON")
    }

    @Test func otherTopicsStillReachOnMessageAndCommandsNeverDo() async throws {
        let seen = NIOLockedValueBox<[String]>([])
        var options = Self.options()
        options.onMessage = { _, _, topic, _ in seen.withLockedValue { $0.append(topic) } }
        let harness = try await SessionLoopHarness(options, opening: true)
        _ = try await self.exchange(harness, [
            #"{"topic":"chat","data":1}"#,
            #"{"topic":"subscribe","data":{"topic":"a","id":1}}"#,
            #"{"topic":"chat:room","data":2}"#,
        ], expecting: 1)
        try await harness.drive { seen.withLockedValue { $0.count } == 2 }
        #expect(seen.withLockedValue { $0 } == ["chat", "chat:room"])
    }
}

/// Over a real socket: how a client learns that the server speaks the command set.
@Suite(.timeLimit(.minutes(10))) struct CommandSubprotocolTests {
    @Test func aServerWithTheCommandSetSelectsMizuLiveV1WhenOfferedAndOnlyThen() async throws {
        let offer = ["Sec-WebSocket-Protocol: chat.v2, mizu-live.v1"]
        try await withLiveServer({
            $0.commands = Live.Commands(canSubscribe: { _, _ in true }, canPublish: { _, _, _ in false })
        }) { _, _, port in
            let offered = try await TestWebSocket.live(port: port, headers: offer)
            #expect(offered.response.status == 101 && offered.response.header("sec-websocket-protocol") == "mizu-live.v1")
            try await offered.send(text: #"{"topic":"subscribe","data":{"topic":"t","id":1}}"#)
            #expect(try await offered.readText() == #"{"topic":"reply","data":{"id":1,"result":{"topic":"t","recovered":false}}}"#)
            try await offered.close()
            let silent = try await TestWebSocket.live(port: port)
            #expect(silent.response.status == 101 && silent.response.header("sec-websocket-protocol") == nil, "nothing offered, nothing selected")
            try await silent.close()
        }
        // A client that pipelines more commands than the send queue holds (as MizuLiveClient
        // resubscribing a thousand topics does) and reads the answers is no slow consumer:
        // the answers of one burst were all counted until the tick's end, and the session was
        // reset past the queue's size.
        try await withLiveServer({
            $0.commands = Live.Commands(canSubscribe: { _, _ in true }, canPublish: { _, _, _ in false })
            $0.queueSize = 64
        }) { _, _, port in
            let client = try await TestWebSocket.live(port: port, headers: offer)
            var burst: [UInt8] = []
            for index in 0..<600 { burst += clientFrame(0x1, Array(#"{"topic":"subscribe","data":{"topic":"t\#(index)","id":\#(index)}}"#.utf8)) }
            try await client.client.send(burst)
            for index in 0..<600 {
                #expect(try await client.readText() == #"{"topic":"reply","data":{"id":\#(index),"result":{"topic":"t\#(index)","recovered":false}}}"#)
            }
            try await client.close()
        }
        try await withLiveServer { _, _, port in
            let offered = try await TestWebSocket.live(port: port, headers: offer)
            #expect(offered.response.status == 101 && offered.response.header("sec-websocket-protocol") == nil, "no command set: v1 is not claimed")
            try await offered.close()
        }
    }
}
