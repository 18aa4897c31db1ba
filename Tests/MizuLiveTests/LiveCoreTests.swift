import Foundation
@_spi(Benchmarking) @testable import MizuLive
@_spi(Benchmarking) import MizuWebSocket
import NIOCore
import NIOEmbedded
import Testing

/// The Live core without sockets: sessions on embedded channels (the benchmarks' way in,
/// `openDetachedSession`), two event loops driven by hand. Synchronous tests, so each embedded
/// loop stays on the one thread that made it.
@Suite struct LiveCoreTests {
    /// A server with `sessions` sessions, alternating between two embedded loops.
    private final class Core {
        let server: Live.Server
        let loops = [EmbeddedEventLoop(), EmbeddedEventLoop()]
        var channels: [EmbeddedChannel] = []
        var sessions: [Live.Session] = []

        init(sessions count: Int, options: Live.Options = Live.Options()) throws {
            self.server = Live.Server(options)
            let configuration = self.server.webSocketConfiguration
            for index in 0..<count {
                let loop = self.loops[index % 2]
                let channel = EmbeddedChannel(loop: loop)
                try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
                let connection = WebSocketConnection.unattached(eventLoop: loop, sendQueueLimit: configuration.maxQueuedMessages)
                try connection.attach(to: channel, configuration: configuration)
                self.channels.append(channel)
                self.sessions.append(self.server.openDetachedSession(id: "s\(index)", connection: connection))
            }
        }

        /// Runs both loops, then returns the text of every frame each session was sent.
        func sent() throws -> [[String]] {
            for loop in self.loops { loop.run() }
            return try self.channels.map { channel in
                var texts: [String] = []
                while var frame = try channel.readOutbound(as: ByteBuffer.self) {
                    while frame.readableBytes > 0 { texts.append(try Self.text(of: &frame)) }
                }
                return texts
            }
        }

        /// One unmasked server text frame off `buffer` (payloads under 64 KiB).
        private static func text(of buffer: inout ByteBuffer) throws -> String {
            struct NotAFrame: Error {}
            guard let head = buffer.readInteger(as: UInt8.self), let short = buffer.readInteger(as: UInt8.self) else { throw NotAFrame() }
            #expect(head == 0x81, "a final text frame")
            var length = Int(short)
            if length == 126 {
                guard let long = buffer.readInteger(as: UInt16.self) else { throw NotAFrame() }
                length = Int(long)
            }
            guard let text = buffer.readString(length: length) else { throw NotAFrame() }
            return text
        }
    }

    @Test func aPublishNoSessionCouldReceiveIsRefused() {
        // A topic no session may subscribe to (empty, or past maxTopicLength) would only keep
        // history for nobody; data nested past 128 levels is no message at all.
        let server = Live.Server(Live.Options())
        let data = Data("1".utf8)
        #expect(!server.publish("", data) && !server.publish(String(repeating: "t", count: 256), data))
        #expect(server.publish(String(repeating: "t", count: 255), data))
        #expect((try? server.publish("", encoding: 1)) == false)
        let deepest = Data((String(repeating: "[", count: 128) + String(repeating: "]", count: 128)).utf8)
        let tooDeep = Data((String(repeating: "[", count: 129) + String(repeating: "]", count: 129)).utf8)
        #expect(Live.Message.isValidData(deepest) && !Live.Message.isValidData(tooDeep))
        #expect(Live.Message.isValidData(Data()) && !Live.Message.isValidData(Data("{".utf8)))
        #expect(server.publish("t", deepest) && !server.publish("t", tooDeep))
    }

    @Test func subscribersAreIndexedByTopicAndLoopAndAnEmptyTopicLeavesNothing() throws {
        let core = try Core(sessions: 3)
        let server = core.server
        #expect(server.sessionCount == 3)
        for session in core.sessions { server.subscribe(session, "t") }
        server.subscribe(core.sessions[0], "t")  // idempotent
        #expect(server.subscriberCount("t") == 3 && server.topicCount == 1)
        let snapshot = try #require(server.core.registry.snapshot("t"))
        #expect(snapshot.buckets.map(\.connections.count).sorted() == [1, 2], "one bucket per event loop")
        server.subscribe(core.sessions[1], "u")
        #expect(core.sessions[1].topics == ["t", "u"] && server.topicCount == 2)
        for session in core.sessions { server.unsubscribe(session, "t") }
        server.unsubscribe(core.sessions[1], "u")
        #expect(server.subscriberCount("t") == 0 && server.topicCount == 0, "no empty topic is kept")
        #expect(core.sessions.allSatisfy { $0.topics.isEmpty })
    }

    @Test func aPublishReachesEverySubscriberOnceInOrderAndNoOneElse() throws {
        let core = try Core(sessions: 4)
        for session in core.sessions.prefix(3) { core.server.subscribe(session, "t") }
        for index in 1...3 { core.server.publish("t", Data("\(index)".utf8)) }
        core.server.publish("elsewhere", Data("0".utf8))
        let sent = try core.sent()
        let expected = (1...3).map { #"{"topic":"t","data":\#($0)}"# }
        #expect(sent.prefix(3).allSatisfy { $0 == expected }, "\(sent)")
        #expect(sent[3].isEmpty, "not subscribed")
    }

    @Test func aHistoryTopicsMessagesCarryConsecutiveOffsetsOfOneEpoch() throws {
        var options = Live.Options()
        options.history = { $0 == "h" ? Live.HistoryPolicy(size: 10, ttl: .seconds(60)) : nil }
        let core = try Core(sessions: 2, options: options)
        for session in core.sessions { core.server.subscribe(session, "h") }
        for index in 1...3 { core.server.publish("h", Data("\(index)".utf8)) }
        for texts in try core.sent() {
            let objects = try texts.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
            #expect(objects.map { ($0["offset"] as? NSNumber)?.intValue } == [1, 2, 3])
            #expect(Set(objects.compactMap { $0["epoch"] as? String }).count == 1)
            #expect(objects.map { ($0["data"] as? NSNumber)?.intValue } == [1, 2, 3])
        }
    }

    @Test func aSessionsOwnSendPastItsQueueClosesItAsASlowConsumerAtOnce() throws {
        var options = Live.Options()
        options.queueSize = 2
        let core = try Core(sessions: 1, options: options)
        let session = core.sessions[0]
        core.channels[0].isWritable = false  // the peer takes nothing: every send stays queued
        for index in 1...2 { try session.send(Live.Message(topic: "t", data: Data("\(index)".utf8))) }
        #expect(throws: Live.Error.queueFull) { try session.send(Live.Message(topic: "t", data: Data("3".utf8))) }
        #expect(session.isClosed && session.closeError == .queueFull, "recorded at once, before the connection's close has run")
        #expect(throws: Live.Error.sessionClosed) { try session.send(Live.Message(topic: "t", data: Data("4".utf8))) }
        for loop in core.loops { loop.run() }
        #expect(!core.channels[0].isActive, "the WebSocket layer closed the slow consumer")
    }
}
