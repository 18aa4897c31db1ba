import Foundation
@testable import MizuLiveClient
import MizuTestSupport
@_spi(Benchmarking) import MizuWebSocket
import NIOCore
import NIOEmbedded
import Testing

/// The client's core without a socket: its connection is a testing channel, the test plays the
/// server (reads the frames the client writes, hands it frames). What no real server does on
/// cue: a gap in the offsets, duplicates, a notice, a temporary refusal of a resubscribe.
@Suite struct ClientCoreTests {
    final class Harness: Sendable {
        let channel: NIOAsyncTestingChannel
        let connection: WebSocketConnection
        let client: LiveClient

        init(_ configure: (inout LiveClient.Configuration) -> Void = { _ in }) async throws {
            self.channel = NIOAsyncTestingChannel()
            let connection = WebSocketConnection.unattached(eventLoop: self.channel.eventLoop, sendQueueLimit: nil)
            self.connection = connection
            let channel = self.channel
            try await channel.eventLoop.submit {
                try connection.attach(to: channel, configuration: WebSocketConfiguration())
            }.get()
            var configuration = LiveClient.Configuration()
            configure(&configuration)
            self.client = LiveClient(url: "ws://unused/ws", configuration: configuration)
            let client = self.client
            try await channel.eventLoop.submit { client.core.opened(connection, generation: 1) }.get()
        }

        /// The next frame the client wrote, as JSON; fails when none comes within the patience.
        func written() async throws -> [String: Any] {
            // (Polled: waitForOutboundWrite cannot be cancelled, so it could not be given a deadline.)
            let deadline = ContinuousClock.now + Patience.scaled(.seconds(5))
            var written: ByteBuffer?
            while written == nil {
                written = try await self.channel.readOutbound(as: ByteBuffer.self)
                if written == nil {
                    guard ContinuousClock.now < deadline else { throw ClientTestTimeout(waitingFor: "a frame from the client") }
                    try await Task.sleep(for: .milliseconds(2))
                }
            }
            var buffer = written!
            // A server-role engine writes unmasked frames: header, then the text.
            _ = buffer.readInteger(as: UInt8.self)
            let length = buffer.readInteger(as: UInt8.self)! & 0x7F
            if length == 126 { _ = buffer.readInteger(as: UInt16.self) } else if length == 127 { _ = buffer.readInteger(as: UInt64.self) }
            return try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
        }

        /// Hands the client one frame from the "server".
        func serve(_ text: String) async throws {
            let client = self.client
            try await self.channel.eventLoop.submit { client.core.received(.text(text), generation: 1) }.get()
        }

        /// Subscribes and answers the subscribe with `result`; returns the subscription and the request.
        func subscribe(_ topic: String, from start: SubscribeStart, answer result: String) async throws -> (LiveSubscription, [String: Any]) {
            let client = self.client
            let task = Task { try await client.subscribe(topic, from: start) }
            let request = try await self.written()
            let id = try #require((request["data"] as? [String: Any])?["id"] as? Int)
            try await self.serve(#"{"topic":"reply","data":{"id":\#(id),"result":\#(result)}}"#)
            return (try await value(of: task), request)
        }
    }

    private func message(_ topic: String, _ n: Int, offset: Int? = nil, epoch: String = "e") -> String {
        let position = offset.map { #","offset":\#($0),"epoch":"\#(epoch)""# } ?? ""
        return #"{"topic":"\#(topic)","data":{"n":\#(n)}\#(position)}"#
    }

    @Test func aGapWhileConnectedResubscribesFromTheLastMessageAndTheReplayFillsIt() async throws {
        let harness = try await Harness()
        let (room, first) = try await harness.subscribe("h", from: .latest(5), answer: #"{"topic":"h","recovered":false,"offset":2,"epoch":"e"}"#)
        #expect(first["topic"] as? String == "subscribe" && (first["data"] as? [String: Any])?["history"] as? Int == 5)
        for offset in 1...3 { try await harness.serve(self.message("h", offset, offset: offset)) }
        try await harness.serve(self.message("h", 3, offset: 3))  // a duplicate
        try await harness.serve(self.message("h", 6, offset: 6))  // 4 and 5 are missing
        let again = try await harness.written()
        let data = try #require(again["data"] as? [String: Any])
        let since = try #require(data["since"] as? [String: Any])
        #expect(again["topic"] as? String == "subscribe" && since["offset"] as? Int == 3 && since["epoch"] as? String == "e")
        try await harness.serve(self.message("h", 7, offset: 7))  // before the answer: the replay brings it
        try await harness.serve(#"{"topic":"reply","data":{"id":\#(data["id"] as! Int),"result":{"topic":"h","recovered":true,"offset":7,"epoch":"e"}}}"#)
        for offset in 4...7 { try await harness.serve(self.message("h", offset, offset: offset)) }
        try await harness.serve(self.message("h", 8, offset: 8))
        let events = try await room.next(8)
        #expect(events.map(\.number) == Array(1...8), "each once, in order")
    }

    @Test func aNoticeAndAFailedRecoveryAreToldAsMissedInTheirPlace() async throws {
        let harness = try await Harness()
        let (room, _) = try await harness.subscribe("h", from: .after(StreamPosition(offset: 4, epoch: "old"), orLatest: 10),
            answer: #"{"topic":"h","recovered":false,"offset":2,"epoch":"new"}"#)
        try await harness.serve(self.message("h", 1, offset: 1, epoch: "new"))
        try await harness.serve(#"{"topic":"h","recovered":false,"offset":9,"epoch":"new"}"#)
        try await harness.serve(self.message("h", 10, offset: 10, epoch: "new"))
        let events = try await room.next(4)
        #expect(events[0] == .missed(resumesAfter: StreamPosition(offset: 2, epoch: "new")))
        #expect(events[1].number == 1 && events[3].number == 10)
        #expect(events[2] == .missed(resumesAfter: StreamPosition(offset: 9, epoch: "new")))
    }

    @Test func aResubscribeRefusedForNowIsTriedAgainAndOneRefusedForGoodEndsTheSubscription() async throws {
        let harness = try await Harness()
        let (room, _) = try await harness.subscribe("h", from: .live, answer: #"{"topic":"h","recovered":false,"offset":0,"epoch":"e"}"#)
        try await harness.serve(self.message("h", 2, offset: 2))  // 1 is missing
        let first = try await harness.written()
        let firstID = try #require((first["data"] as? [String: Any])?["id"] as? Int)
        try await harness.serve(#"{"topic":"reply","data":{"id":\#(firstID),"error":{"code":"unavailable","message":"store away","temporary":true}}}"#)
        // Asked again a second later (the testing loop's clock).
        await harness.channel.testingEventLoop.advanceTime(by: .seconds(1))
        let second = try await harness.written()
        let secondID = try #require((second["data"] as? [String: Any])?["id"] as? Int)
        #expect(secondID != firstID && second["topic"] as? String == "subscribe")
        try await harness.serve(#"{"topic":"reply","data":{"id":\#(secondID),"error":{"code":"not_allowed","message":"not allowed","temporary":false}}}"#)
        await #expect(throws: LiveClientError.server(code: "not_allowed", message: "not allowed", temporary: false)) { _ = try await room.next(1) }
        try await harness.serve(self.message("h", 3, offset: 3))
        #expect(harness.client.core.state.withLockedValue { $0.subscriptions.isEmpty }, "the topic is no one's now")
    }

    @Test func repliesToNothingAndUnreadableFramesAreCountedNeverFatal() async throws {
        let harness = try await Harness()
        try await harness.serve(#"{"topic":"reply","data":{"id":999,"result":{}}}"#)
        try await harness.serve("not json")
        try await harness.serve(#"{"topic":"other","data":1}"#)
        #expect(harness.client.core.state.withLockedValue { $0.unreadable } == 2)
        var others = harness.client.otherMessages.makeAsyncIterator()
        #expect(await others.next()?.topic == "other", "a topic no subscription holds goes to otherMessages")
        #expect(harness.client.state == .connected)
    }

    @Test func aRequestWithoutAnswerTimesOutAndAPublishInFlightWhenTheConnectionDiesIsReportedLost() async throws {
        // Longer than any run's pause between two steps: a read queued after the connection
        // died waits on a real loop (the harness cannot put it on the test's clock), and a
        // loaded (TSan) run once took the first 3 s this test had there.
        let harness = try await Harness { $0.requestTimeout = .seconds(3600) }
        let client = harness.client
        let read = Task { try await client.history("h") }
        _ = try await harness.written()
        await harness.channel.testingEventLoop.advanceTime(by: .seconds(3600))
        await #expect(throws: LiveClientError.timeout) { _ = try await value(of: read) }

        let publish = Task { try await client.publish("h", json: "1") }
        let presence = Task { try await client.presence("p") }
        _ = try await harness.written()
        _ = try await harness.written()
        try await harness.channel.eventLoop.submit { client.core.closed(generation: 1) }.get()
        await #expect(throws: LiveClientError.connectionLost) { try await value(of: publish) }
        // The read waits for the next connection, where it is sent again.
        #expect(client.core.state.withLockedValue { $0.unsent.count } == 1)
        presence.cancel()
        await client.close(flushTimeout: .zero)
        await #expect(throws: LiveClientError.closed) { _ = try await value(of: presence) }
    }
}
