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
    private final class Harness: Sendable {
        let server: Live.Server
        let loop = NIOAsyncTestingEventLoop()
        let channel: NIOAsyncTestingChannel
        let connection: WebSocketConnection

        /// A connection on the testing loop; `events` (nil: a detached session, no hooks) drive it.
        init(_ options: Live.Options, opening: Bool) async throws {
            self.server = Live.Server(options)
            self.channel = NIOAsyncTestingChannel(loop: self.loop)
            try await self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).get()
            let configuration = self.server.webSocketConfiguration
            self.connection = WebSocketConnection.unattached(eventLoop: self.loop, sendQueueLimit: configuration.maxQueuedMessages)
            var events = WebSocketEvents()
            if opening {
                guard case .admitted(let ticket) = self.server.core.limiter.admit(nil) else { throw Refused() }
                events = SessionOpening(
                    id: .custom("s"), value: nil, request: Request(method: .GET, uri: "/ws"), core: self.server.core, ticket: ticket
                ).events
            }
            let (channel, connection, drivers) = (self.channel, self.connection, events)
            try await self.loop.submit { try connection.attach(to: channel, configuration: configuration, events: drivers) }.get()
        }

        struct Refused: Error {}

        /// A masked client text frame, as the peer would send it.
        func receive(_ text: String) async throws {
            try await self.channel.writeInbound(ByteBuffer(bytes: clientFrame(0x1, Array(text.utf8))))
            await self.loop.run()
        }

        /// Runs the loop (and lets tasks on it run) until `done`, within the patience.
        func drive(until done: @Sendable () -> Bool) async throws {
            let deadline = NIODeadline.now() + Patience.scaled(.seconds(5))
            while !done() {
                guard NIODeadline.now() < deadline else { throw TimedOut() }
                await self.loop.run()
                try await Task.sleep(for: .milliseconds(1))
            }
        }

        struct TimedOut: Error {}

        /// The text of every data frame flushed so far.
        func sentTexts() async throws -> [String] {
            await self.loop.run()
            var texts: [String] = []
            while var buffer = try await self.channel.readOutbound(as: ByteBuffer.self) {
                while let frame = ServerFrame.parse(&buffer) {
                    if frame.opcode == 0x1 { texts.append(String(decoding: frame.payload, as: UTF8.self)) }
                }
            }
            return texts
        }
    }

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
        let harness = try await Harness(options, opening: true)
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
        let harness = try await Harness(options, opening: false)
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
        let harness = try await Harness(options, opening: false)
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
}
