import Foundation
@_spi(Benchmarking) @testable import MizuLive
@_spi(Benchmarking) import MizuWebSocket
import MizuHTTP
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing

/// A session's life without sockets, on a testing event loop that any task may use: the
/// opening stage, the hooks' order, and the windows of a recovery. Frames go in and out of a
/// testing channel; the loop runs when the test says.
@Suite struct LiveSessionLoopTests {
    @Test func hooksRunOneAtATimeInTheOrderOfTheFrames() async throws {
        let log = NIOLockedValueBox<[String]>([])
        let running = NIOLockedValueBox((now: 0, most: 0))
        @Sendable func hook(_ entry: String) async {
            running.withLockedValue { $0.now += 1; $0.most = max($0.most, $0.now) }
            log.withLockedValue { $0.append(entry) }
            await Task.yield()  // a hook that suspends: the next must still wait for it
            running.withLockedValue { $0.now -= 1 }
        }
        var options = Live.Options()
        options.onOpen = { _, _ in await hook("open") }
        options.onMessage = { _, _, topic, data in await hook("\(topic) \(String(decoding: data, as: UTF8.self))") }
        options.onBadMessage = { _, data in await hook("bad \(String(decoding: data, as: UTF8.self))") }
        options.onClose = { _, error in await hook("close \(error.map { "\($0)" } ?? "clean")") }
        let harness = try await SessionLoopHarness(options, opening: true)
        try await harness.receive(#"{"topic":"a","data":1}"#)
        try await harness.receive("nonsense")
        try await harness.receive(#"{"topic":"b","data":[2]}"#)
        try await harness.channel.writeInbound(ByteBuffer(bytes: clientFrame(0x8, [0x03, 0xE8])))  // close 1000
        try await harness.drive { log.withLockedValue { $0.count } == 5 }
        #expect(log.withLockedValue { $0 } == ["open", "a 1", "bad nonsense", "b [2]", "close clean"])
        #expect(running.withLockedValue { $0.most } == 1, "never two hooks of one session at once")
        #expect(harness.server.sessionCount == 0, "unregistered once closed")
    }

    @Test func aRecoveryRacingPublishesSendsEachMessageOnceInOrder() async throws {
        var options = Live.Options()
        options.history = { _ in Live.HistoryPolicy(size: 100, ttl: .seconds(60)) }
        let harness = try await SessionLoopHarness(options, opening: false)
        let server = harness.server
        let session = server.openDetachedSession(id: "ann", connection: harness.connection)
        for index in 1...3 { server.publish("h", Data("\(index)".utf8)) }
        let epoch = try await server.history("h").top.epoch
        // Published between the subscribe and the read (the read covers them: sent once, from
        // history), and between the read and the hand-over (they waited: sent after it).
        server.core.recoveryTestHooks.withLockedValue {
            $0.beforeRead = { for index in 4...5 { server.publish("h", Data("\(index)".utf8)) } }
            $0.beforeCompletion = { for index in 6...7 { server.publish("h", Data("\(index)".utf8)) } }
        }
        let result = await server.subscribe(session, "h", recoverFrom: Live.StreamPosition(offset: 2, epoch: epoch))
        #expect(result.subscribed && result.recovered && result.replayed == 3)
        #expect(result.top == Live.StreamPosition(offset: 7, epoch: epoch))
        server.core.recoveryTestHooks.withLockedValue { $0 = RecoveryTestHooks() }
        server.publish("h", Data("8".utf8))
        let datas = try await harness.sentTexts().map { text -> Int? in
            let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
            return (object?["data"] as? NSNumber)?.intValue
        }
        #expect(datas == [3, 4, 5, 6, 7, 8], "each once, in stream order, the live one last")
    }

    @Test func aRecoveryFromAnotherEpochOrPastTheTopIsNotRecoveredAndGetsTheLatest() async throws {
        var options = Live.Options()
        options.history = { _ in Live.HistoryPolicy(size: 100, ttl: .seconds(60)) }
        let harness = try await SessionLoopHarness(options, opening: false)
        let server = harness.server
        for index in 1...3 { server.publish("h", Data("\(index)".utf8)) }
        let epoch = try await server.history("h").top.epoch
        for (name, since) in [("other", Live.StreamPosition(offset: 1, epoch: "not-" + epoch)), ("future", Live.StreamPosition(offset: 99, epoch: epoch)),
                              ("huge", Live.StreamPosition(offset: .max, epoch: epoch))] {
            let session = server.openDetachedSession(id: name, connection: harness.connection)
            let result = await server.subscribe(session, "h", recoverFrom: since, latest: 2)
            #expect(result.subscribed && !result.recovered, "\(name)")
            #expect(result.replayed == 2 && result.top == Live.StreamPosition(offset: 3, epoch: epoch), "\(name): the latest two instead")
            server.unsubscribe(session, "h")
        }
    }

    @Test func anApplicationCloseCodeTellsTheClientWhetherToReconnect() async throws {
        for (asked, sent) in [(UInt16(4501), UInt16(4501)), (4000, 4000), (4999, 4999), (1011, 1000), (5000, 1000), (0, 1000)] {
            let harness = try await SessionLoopHarness(Live.Options(), opening: false)
            let session = harness.server.openDetachedSession(id: "s", connection: harness.connection)
            session.close(code: asked, reason: String(repeating: "r", count: 200))
            #expect(session.isClosed && session.closeError == nil, "the application's own decision is no error")
            await harness.loop.run()
            var buffer = try #require(try await harness.channel.readOutbound(as: ByteBuffer.self))
            let frame = try #require(ServerFrame.parse(&buffer))
            #expect(frame.opcode == 0x8 && frame.closeCode == sent, "\(asked)")
            #expect(frame.payload.count == 2 + 123, "the reason cut to what a close frame holds")
        }
    }
}
