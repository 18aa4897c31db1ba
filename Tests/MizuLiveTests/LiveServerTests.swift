import Foundation
import Mizu
import MizuCompat
@testable import MizuLive
import MizuWebSocket
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Records what the hooks saw.
final class HookLog: Sendable {
    let messages = NIOLockedValueBox<[(session: String, topic: String, data: String)]>([])
    let closes = NIOLockedValueBox<[(session: String, error: Live.Error?, topicsAtClose: Int)]>([])
    let sessions = NIOLockedValueBox<[Live.Session]>([])
    let concurrent = NIOLockedValueBox<(now: Int, max: Int)>((0, 0))

    func waitFor(closes count: Int) async throws -> [(session: String, error: Live.Error?, topicsAtClose: Int)] {
        try await eventually("\(count) onClose calls") { self.closes.withLockedValue { $0.count >= count ? $0 : nil } }
    }

    func waitFor(messages count: Int) async throws -> [(session: String, topic: String, data: String)] {
        try await eventually("\(count) messages") { self.messages.withLockedValue { $0.count >= count ? $0 : nil } }
    }

    /// The first `count` sessions in the order their onOpen ran, which is not always the
    /// order their clients connected in: a test that tells them apart uses ``session(of:)``.
    func waitFor(sessions count: Int) async throws -> [Live.Session] {
        try await eventually("\(count) sessions") { self.sessions.withLockedValue { $0.count >= count ? $0 : nil } }
    }

    /// The session of the client that connected with `?user=<user>`, once its onOpen ran.
    func session(of user: String) async throws -> Live.Session {
        try await eventually("\(user)'s session") { self.sessions.withLockedValue { $0.first { $0.value as? String == user } } }
    }
}

/// Options whose hooks log into `log`; the "subscribe" topic subscribes, as in the seed.
func loggingOptions(_ log: HookLog, server: NIOLockedValueBox<Live.Server?>) -> Live.Options {
    var options = Live.Options(
        onAuth: { _, request in
            guard let user = request.query["user"] else { throw HTTPError(.unauthorized, "user required") }
            return user
        },
        onMessage: { _, session, topic, data in
            log.concurrent.withLockedValue { $0.now += 1; $0.max = max($0.max, $0.now) }
            try? await Task.sleep(nanoseconds: 1_000_000)
            log.messages.withLockedValue { $0.append((session.id, topic, String(decoding: data, as: UTF8.self))) }
            if topic == "subscribe", let topicName = try? JSONDecoder().decode(String.self, from: data) {
                server.withLockedValue { $0 }?.subscribe(session, topicName)
            }
            log.concurrent.withLockedValue { $0.now -= 1 }
        },
        onClose: { session, error in
            log.closes.withLockedValue { $0.append((session.id, error as? Live.Error, session.topics.count)) }
        })
    options.onOpen = { _, session in log.sessions.withLockedValue { $0.append(session) } }
    // Test clients answer no ping: a slow run must not reach the heartbeat's deadline by itself
    // (tests of the heartbeat set their own).
    options.heartbeatInterval = Patience.scaled(.seconds(25))
    return options
}

func withLiveServer(
    _ configure: (inout Live.Options) -> Void = { _ in },
    _ body: (Live.Server, HookLog, Int) async throws -> Void
) async throws {
    let log = HookLog()
    let box = NIOLockedValueBox<Live.Server?>(nil)
    var options = loggingOptions(log, server: box)
    configure(&options)
    let server = Live.Server(options)
    box.withLockedValue { $0 = server }
    let app = App()
    app.get("/ws", compat(server.handler()))
    try await withServer(app) { (port: Int) async throws in try await body(server, log, port) }
}

extension TestWebSocket {
    static func live(port: Int, user: String? = "ann", headers: [String] = []) async throws -> TestWebSocket {
        let socket = try await TestWebSocket.connect(port: port, path: user.map { "/ws?user=\($0)" } ?? "/ws", headers: headers)
        return socket
    }

    func readText(timeout: TimeAmount = .seconds(5)) async throws -> String {
        while true {
            let frame = try await self.readFrame(timeout: timeout)
            if frame.opcode == 0x1 { return frame.text }
            if frame.opcode == 0x8 { throw RawClient.Timeout(waitingFor: "a text frame", received: "close \(frame.closeCode ?? 0)") }
        }
    }

    /// Sends a close and waits for the server to end the TCP connection. The server promises
    /// that within its close timeout (5 s) even on its slowest path; waiting exactly as long
    /// would race that bound on a loaded machine (one run in seven of the full suite did).
    func close() async throws {
        try await self.send(0x8, [0x03, 0xE8])
        _ = try await self.client.waitForClose(timeout: .seconds(8))
    }
}

@Suite(.timeLimit(.minutes(10))) struct LiveServerTests {
    @Test func authValueOriginsAndRefusals() async throws {
        try await withLiveServer({ $0.origins = ["https://allowed.example"] }) { server, log, port in
            let socket = try await TestWebSocket.live(port: port, user: "ann")
            #expect(socket.response.status == 101)
            let session = try await log.waitFor(sessions: 1)[0]
            #expect(session.value as? String == "ann")
            #expect(session.id.count == 32 && session.id.allSatisfy(\.isHexDigit))

            let refused = try await TestWebSocket.live(port: port, user: nil)
            #expect(refused.response.status == 401)
            #expect(refused.response.text.hasPrefix("unauthorized"))

            let same = try await TestWebSocket.live(port: port, headers: ["Origin: http://127.0.0.1"])
            #expect(same.response.status == 101, "the server's own origin (Host: 127.0.0.1)")
            let listed = try await TestWebSocket.live(port: port, headers: ["Origin: https://allowed.example"])
            #expect(listed.response.status == 101)
            let foreign = try await TestWebSocket.live(port: port, headers: ["Origin: https://evil.example"])
            #expect(foreign.response.status == 403)
            #expect(foreign.response.text == "origin not allowed\n")
            for s in [socket, same, listed] { try await s.close() }
        }
        try await withLiveServer({ options in
            options.onAuth = nil
            options.checkOrigin = { $0.header("origin")?.hasSuffix(".mycompany.com") == true }
            options.idGenerator = { "fixed-id" }
        }) { _, log, port in
            let anonymous = try await TestWebSocket.live(port: port, user: nil, headers: ["Origin: https://a.mycompany.com"])
            #expect(anonymous.response.status == 101, "nil onAuth accepts everyone")
            let session = try await log.waitFor(sessions: 1)[0]
            #expect(session.value == nil)
            #expect(session.id == "fixed-id")
            #expect(try await TestWebSocket.live(port: port, headers: ["Origin: http://127.0.0.1"]).response.status == 403,
                    "checkOrigin takes precedence")
            try await anonymous.close()
        }
    }

    @Test func onMessageGetsRawDataInOrderAndNeverConcurrently() async throws {
        try await withLiveServer { _, log, port in
            let socket = try await TestWebSocket.live(port: port)
            for index in 0..<20 {
                try await socket.send(text: #"{"topic":"t\#(index)","data":{ "n" : \#(index) }}"#)
            }
            let messages = try await log.waitFor(messages: 20)
            #expect(messages.map(\.topic) == (0..<20).map { "t\($0)" })
            #expect(messages[3].data == #"{ "n" : 3 }"#)
            #expect(log.concurrent.withLockedValue { $0.max } == 1)
            try await socket.close()
        }
    }

    @Test func publishReachesSubscribersWithExactBytes() async throws {
        try await withLiveServer { server, log, port in
            let a = try await TestWebSocket.live(port: port, user: "a")
            let b = try await TestWebSocket.live(port: port, user: "b")
            let sessions = [try await log.session(of: "a"), try await log.session(of: "b")]
            server.subscribe(sessions[0], "room")
            server.subscribe(sessions[0], "room")  // idempotent
            server.subscribe(sessions[1], "other")
            #expect(server.subscriberCount("room") == 1)
            #expect(server.topicCount == 2)
            #expect(server.sessionCount == 2)
            #expect(sessions[0].topics == ["room"])
            server.publish("room", Data(#"{"text":"Hello!"}"#.utf8))
            try server.publish("other", encoding: ["n": 1])
            #expect(try await a.readText() == #"{"topic":"room","data":{"text":"Hello!"}}"#)
            #expect(try await b.readText() == #"{"topic":"other","data":{"n":1}}"#)
            server.unsubscribe(sessions[0], "room")
            server.unsubscribe(sessions[0], "room")
            #expect(server.subscriberCount("room") == 0)
            #expect(server.topicCount == 1, "an empty topic leaves nothing behind")
            server.publish("room", Data("1".utf8))
            try sessions[0].send(Live.Message(topic: "direct", data: Data("2".utf8)))
            #expect(try await a.readText() == #"{"topic":"direct","data":2}"#, "the unsubscribed publish never arrived")
            try await a.close()
            try await b.close()
        }
    }

    @Test func writeDelayHoldsWritesThenSendsThemTogether() async throws {
        try await withLiveServer({ $0.writeDelay = .milliseconds(200) }) { server, log, port in
            let socket = try await TestWebSocket.live(port: port)
            let session = try await log.waitFor(sessions: 1)[0]
            server.subscribe(session, "t")
            let start = NIODeadline.now()
            for index in 0..<3 { server.publish("t", Data("\(index)".utf8)) }
            try session.send(Live.Message(topic: "direct", data: Data("3".utf8)))
            var received: [String] = []
            for _ in 0..<4 { received.append(try await socket.readText()) }
            // Nothing can leave before the flush is due: a lower bound, not a speed claim.
            #expect(NIODeadline.now() - start >= .milliseconds(190))
            #expect(received == (0..<3).map { #"{"topic":"t","data":\#($0)}"# } + [#"{"topic":"direct","data":3}"#])
            try await socket.close()
        }
    }

    @Test func perPublisherOrderIsKept() async throws {
        // 800 messages in one burst: the queue must hold them all (256, the default, would not).
        try await withLiveServer({ $0.queueSize = 1024 }) { server, log, port in
            let socket = try await TestWebSocket.live(port: port)
            let session = try await log.waitFor(sessions: 1)[0]
            server.subscribe(session, "seq")
            await withTaskGroup(of: Void.self) { group in
                for publisher in 0..<4 {
                    group.addTask {
                        for index in 0..<200 { server.publish("seq", Data(#"[\#(publisher),\#(index)]"#.utf8)) }
                    }
                }
            }
            var next = [Int](repeating: 0, count: 4)
            for _ in 0..<800 {
                let text = try await socket.readText()
                let pair = try JSONDecoder().decode([Int].self, from: Data(text.dropFirst(#"{"topic":"seq","data":"#.count).dropLast().utf8))
                #expect(pair[1] == next[pair[0]], "publisher \(pair[0]) out of order")
                next[pair[0]] = pair[1] + 1
            }
            #expect(next == [200, 200, 200, 200], "nothing lost, nothing duplicated")
            try await socket.close()
        }
    }

    @Test func binaryEnvelopesAreCheckedForUTF8AndTextOnesOnce() async throws {
        try await withLiveServer { _, log, port in
            let socket = try await TestWebSocket.live(port: port)
            // A binary frame was never validated as UTF-8 on arrival: the envelope parser must.
            try await socket.send(0x2, Array(#"{"topic":"t","data":""#.utf8) + [0xFF] + Array(#""}"#.utf8))
            #expect(try await socket.readText() == #"{"topic":"error","data":"bad message"}"#)
            try await socket.send(0x2, Array(#"{"topic":"bin","data":"ok"}"#.utf8))
            try await socket.send(text: #"{"topic":"txt","data":"h\u00e9 ✓"}"#)
            let messages = try await log.waitFor(messages: 2)
            #expect(messages.map(\.topic) == ["bin", "txt"])
            #expect(messages[1].data == #""h\u00e9 ✓""#, "the data goes to the hook byte for byte")
            try await socket.close()
        }
    }

    @Test func badEnvelopesAreAnsweredNotFatal() async throws {
        try await withLiveServer { _, log, port in
            let socket = try await TestWebSocket.live(port: port)
            for bad in ["not json", #"{"data":1}"#, #"{"topic":5}"#, "[1,2]"] {
                try await socket.send(text: bad)
                #expect(try await socket.readText() == #"{"topic":"error","data":"bad message"}"#)
            }
            try await socket.send(text: #"{"topic":"still","data":true}"#)
            #expect(try await log.waitFor(messages: 1)[0].topic == "still")
            try await socket.close()
        }
        let seen = NIOLockedValueBox<[String]>([])
        try await withLiveServer({ options in
            options.onBadMessage = { _, data in seen.withLockedValue { $0.append(String(decoding: data, as: UTF8.self)) } }
        }) { _, _, port in
            let socket = try await TestWebSocket.live(port: port)
            try await socket.send(text: "oops")
            _ = try await eventually("the bad message seen") { seen.withLockedValue { $0.isEmpty ? nil : true } }
            #expect(seen.withLockedValue { $0 } == ["oops"])
            try await socket.close()
        }
    }

    @Test func onCloseRunsOnceWithTheRealReasonAfterSubscriptionsAreGone() async throws {
        try await withLiveServer({ $0.readLimit = 1024 }) { server, log, port in
            // Clean close by the client.
            let clean = try await TestWebSocket.live(port: port)
            try await clean.send(text: #"{"topic":"subscribe","data":"news"}"#)
            _ = try await log.waitFor(messages: 1)
            #expect(server.subscriberCount("news") == 1)
            try await clean.close()
            var closes = try await log.waitFor(closes: 1)
            #expect(closes[0].error == nil)
            #expect(closes[0].topicsAtClose == 0)
            #expect(server.subscriberCount("news") == 0)

            // Other endings.
            let peerCode = try await TestWebSocket.live(port: port)
            try await peerCode.send(0x8, [0x0F, 0xA0] + Array("bye".utf8))
            _ = try await peerCode.expectClose()
            let tooBig = try await TestWebSocket.live(port: port)
            try await tooBig.send(text: String(repeating: "x", count: 2000))
            #expect(try await tooBig.expectClose().closeCode == 1009)
            let broken = try await TestWebSocket.live(port: port)
            try await broken.client.send(clientFrame(0x1, [0x61], mask: nil))
            #expect(try await broken.expectClose().closeCode == 1002)
            let lost = try await TestWebSocket.live(port: port)
            await lost.client.close()
            closes = try await log.waitFor(closes: 5)
            let errors = closes.dropFirst().map(\.error)
            #expect(errors.contains(.closedByPeer(code: 4000, reason: "bye")))
            #expect(errors.contains(.messageTooLarge))
            #expect(errors.contains(.protocolError(code: 1002, reason: "unmasked client frame")))
            #expect(errors.contains(.connectionLost))
            try await Task.sleep(nanoseconds: 50_000_000)
            #expect(log.closes.withLockedValue { $0.count } == 5, "exactly once each")
            #expect(server.sessionCount == 0)
        }
    }

    @Test func sessionCloseSendAndShutdown() async throws {
        try await withLiveServer { server, log, port in
            let socket = try await TestWebSocket.live(port: port)
            let session = try await log.waitFor(sessions: 1)[0]
            #expect(!session.isClosed)
            session.close()
            #expect(session.isClosed)
            #expect(throws: Live.Error.sessionClosed) { try session.send(Live.Message(topic: "x")) }
            server.subscribe(session, "late")
            #expect(server.subscriberCount("late") == 0, "subscribing a closed session does nothing")
            let frame = try await socket.readFrame()
            #expect(frame.closeCode == 1000)
            try await socket.send(0x8, [0x03, 0xE8])
            #expect(try await log.waitFor(closes: 1)[0].error == nil)
            #expect(session.closeError == nil)

            let other = try await TestWebSocket.live(port: port)
            let second = try await log.waitFor(sessions: 2)[1]
            server.subscribe(second, "t")
            async let shutdown: Void = server.shutdown()
            #expect(try await other.readFrameSkippingPings().closeCode == 1001)
            try await other.send(0x8, [0x03, 0xE9])
            await shutdown
            #expect(try await log.waitFor(closes: 2)[1].error == .serverShutdown)
            #expect(server.sessionCount == 0)
            #expect(server.topicCount == 0)
        }
    }

    @Test func heartbeatClosesDeadClients() async throws {
        try await withLiveServer({ $0.heartbeatInterval = .milliseconds(100) }) { _, log, port in
            let socket = try await TestWebSocket.live(port: port)
            #expect(try await socket.readFrame(timeout: .seconds(3)).opcode == 0x9)
            _ = try await socket.client.waitForClose(timeout: .seconds(3))
            #expect(try await log.waitFor(closes: 1)[0].error == .heartbeatTimeout)
        }
    }

    @Test func aStalledReaderIsClosedWhileAHealthyOneGetsEverything() async throws {
        try await withLiveServer({ $0.queueSize = 16; $0.compression = false }) { server, log, port in
            let healthy = try await TestWebSocket.live(port: port, user: "healthy")
            let stalledClient = try await RawClient.connect(port: port, receiveBufferSize: 4096)
            try await stalledClient.send(TestWebSocket.handshakeRequest(path: "/ws?user=stalled"))
            #expect(try await stalledClient.readResponse().status == 101)
            try await stalledClient.stopReading()
            let sessions = try await log.waitFor(sessions: 2)
            for session in sessions { server.subscribe(session, "firehose") }
            let payload = String(repeating: "z", count: 8 * 1024)
            let count = 2000
            let window = 8  // the healthy reader is never more than this behind
            var received = 0
            func receiveOne() async throws {
                let text = try await healthy.readText(timeout: .seconds(10))
                #expect(text.hasPrefix(#"{"topic":"firehose","data":[\#(received),"#), "healthy subscriber lost or reordered \(received)")
                received += 1
            }
            for index in 0..<count {
                server.publish("firehose", Data(#"[\#(index),"\#(payload)"]"#.utf8))
                if index >= window { try await receiveOne() }
            }
            while received < count { try await receiveOne() }
            let closes = try await log.waitFor(closes: 1)
            #expect(closes.map(\.error) == [.queueFull])
            #expect(sessions.first { $0.value as? String == "stalled" }?.closeError == .queueFull)
            try await healthy.close()
            await stalledClient.close()
        }
    }

    @Test func servedWithNoRouterAtAll() async throws {
        let server = Live.Server(Live.Options(onMessage: { _, session, topic, data in
            try? session.send(Live.Message(topic: "echo:" + topic, data: data))
        }))
        let http = HTTPServer(handler: server.handler())
        let port = try await http.start(host: "127.0.0.1", port: 0).port!
        let socket = try await TestWebSocket.live(port: port, user: nil)
        try await socket.send(text: #"{"topic":"x","data":[1]}"#)
        #expect(try await socket.readText() == #"{"topic":"echo:x","data":[1]}"#)
        try await socket.close()
        await http.shutdown()
    }

    @Test func thousandsOfCyclesLeaveNothingBehind() async throws {
        try await withLiveServer { server, log, port in
            let cycles = 2000
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<20 {
                    group.addTask {
                        for index in 0..<(cycles / 20) {
                            let socket = try await TestWebSocket.live(port: port, user: "u\(worker)")
                            try await socket.send(text: #"{"topic":"subscribe","data":"room\#(index % 7)"}"#)
                            try await socket.send(text: #"{"topic":"subscribe","data":"w\#(worker)"}"#)
                            if index % 2 == 0 { try await socket.close() } else { await socket.client.close() }
                        }
                    }
                }
                try await group.waitForAll()
            }
            _ = try await log.waitFor(closes: cycles)
            for _ in 0..<200 where server.sessionCount > 0 { try await Task.sleep(nanoseconds: 10_000_000) }
            #expect(server.sessionCount == 0)
            #expect(server.topicCount == 0)
        }
    }
}
